use chopsticks::remote;

#[remote]
fn add((a, b): (i32, i32)) -> i32 {
    a + b
}

fn main() {
    let _ = add((1, 2));
}
