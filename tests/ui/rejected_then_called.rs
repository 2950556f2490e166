use chopsticks::remote;

#[remote]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() -> chopsticks::Result<()> {
    let tunnel = chopsticks::Tunnel::local()?;
    // Only the `&str` error should be reported, not a second one here.
    let _ = tunnel.call(shout, ("hi",))?;
    Ok(())
}
