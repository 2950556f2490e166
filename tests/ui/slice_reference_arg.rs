use chopsticks::remote;

#[remote]
fn checksum(data: &[u8]) -> u64 {
    data.iter().map(|&b| u64::from(b)).sum()
}

fn main() {
    let _ = checksum(&[1, 2, 3]);
}
