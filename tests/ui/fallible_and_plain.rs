use chopsticks::remote;

#[remote(fallible, plain)]
fn answer() -> Result<u32, String> {
    Ok(42)
}

fn main() {
    let _ = answer();
}
