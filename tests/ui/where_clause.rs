use chopsticks::remote;

#[remote]
fn answer() -> u32
where
    u32: Copy,
{
    42
}

fn main() {
    let _ = answer();
}
