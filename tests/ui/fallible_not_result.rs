use chopsticks::remote;

#[remote(fallible)]
fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}
