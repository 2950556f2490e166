//! Compile-fail tests: what `#[remote]`, `#[chopsticks::main]` and
//! `Tunnel::call` reject, and how the error reads. Each `ui/*.rs` holds one
//! mistake; its `.stderr` is the expected diagnostic.
//!
//! Regenerate after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p chopsticks-tests --test ui`, then read
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
