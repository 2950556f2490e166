use chopsticks::remote;

#[derive(Debug)]
pub struct Oops;

#[remote]
fn answer() -> Result<u32, Oops> {
    Err(Oops)
}

fn main() {
    let _ = answer();
}
