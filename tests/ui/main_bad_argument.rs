#[chopsticks::main(agent)]
fn main() {}
