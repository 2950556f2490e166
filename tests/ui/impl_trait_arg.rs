use chopsticks::remote;

#[remote]
fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {
    let _ = show(1);
}
