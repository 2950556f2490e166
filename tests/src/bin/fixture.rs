//! An agent binary built from the same source as the tests: `Tunnel::local_binary`.

// Names the library, so that it is linked in with its #[remote] functions.
use chopsticks_tests as _;

#[chopsticks::main]
fn main() {
    eprintln!("fixture: run me through chopsticks::Tunnel::local_binary");
}
