use chopsticks::remote;

#[remote(crate = chopsticks, crate = ::chopsticks)]
fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}
