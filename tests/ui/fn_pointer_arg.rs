use chopsticks::remote;

#[remote]
fn apply(f: fn(u32) -> u32, x: u32) -> u32 {
    f(x)
}

fn main() {
    let _ = apply(|x| x + 1, 1);
}
