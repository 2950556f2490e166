use chopsticks::remote;

#[remote]
fn greet(name: String) -> String {
    format!("hello {name}")
}

fn main() -> chopsticks::Result<()> {
    let tunnel = chopsticks::Tunnel::local()?;
    tunnel.call(greet, ("web1",))?;
    Ok(())
}
