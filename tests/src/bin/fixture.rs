//! An agent binary built from the same source as the tests: `Tunnel::local_binary`.

#[chopsticks::main]
fn main() {
    // Name the library so its #[remote] functions are linked in.
    let _ = chopsticks_tests::FUNCTIONS;
    eprintln!("fixture: run me through chopsticks::Tunnel::local_binary");
}
