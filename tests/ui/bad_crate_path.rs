use chopsticks::remote;

#[remote(crate = "not a path")]
fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}
