fn plain_fn(x: i64) -> i64 {
    x
}

fn main() -> chopsticks::Result<()> {
    let tunnel = chopsticks::Tunnel::local()?;
    tunnel.call(plain_fn, (1,))?;
    Ok(())
}
