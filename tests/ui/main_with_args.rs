#[chopsticks::main]
fn main(x: i32) {
    let _ = x;
}
