use chopsticks::remote;

#[remote]
struct Job {
    id: u32,
}

fn main() {
    let _ = Job { id: 1 }.id;
}
