use chopsticks::remote;

#[remote(bogus)]
fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}
