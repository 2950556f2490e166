use chopsticks::remote;

#[remote]
fn ignore(_: u32) -> u32 {
    0
}

fn main() {
    let _ = ignore(1);
}
