//! An agent built without the test library: it lacks the tests' functions,
//! as an agent built from older source would.

#[chopsticks::main]
fn main() {}
