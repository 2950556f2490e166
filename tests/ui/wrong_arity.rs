use chopsticks::remote;

#[remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() -> chopsticks::Result<()> {
    let tunnel = chopsticks::Tunnel::local()?;
    tunnel.call(add, (1,))?;
    Ok(())
}
