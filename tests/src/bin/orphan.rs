//! A controller that leaves a long call in flight and waits to be killed:
//! prints its agent's pid, then sleeps. `orphan [SSH_CONFIG HOST]` (a
//! local tunnel without arguments).

use std::io::Write;
use std::time::Duration;

use chopsticks_tests::sleep_ms;

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let t = chopsticks_tests::tunnel_from_args()?;
    let _call = t.call_async(sleep_ms, (600_000,));
    // Give the call time to reach the agent before saying so.
    std::thread::sleep(Duration::from_millis(200));
    println!("{}", t.agent_pid());
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}
