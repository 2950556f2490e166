use chopsticks::remote;

#[remote]
fn sum(first: i32, _rest: ...) -> i32 {
    first
}

fn main() {}
