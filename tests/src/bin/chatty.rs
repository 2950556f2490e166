//! A controller whose host writes far more stderr than a pipe holds: run
//! with a stderr nobody reads, it must still get its replies and finish.
//! Prints `ok <sum>` on stdout.

use std::time::Duration;

use chopsticks::Tunnel;
use chopsticks_tests::{add, shout};

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let t = Tunnel::local()?;
    t.set_call_timeout(Some(Duration::from_secs(30)));
    // 2 MB of stderr lines, forwarded as `[localhost] xxx...`.
    t.call(shout, (20_000,))?;
    let sum = t.call(add, (40, 2))?;
    println!("ok {sum}");
    Ok(())
}
