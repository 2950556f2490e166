use chopsticks::remote;

#[remote]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {
    let _ = shout("hi");
}
