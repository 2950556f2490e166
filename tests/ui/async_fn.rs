use chopsticks::remote;

#[remote]
async fn fetch(url: String) -> String {
    url
}

fn main() {
    // The function is still emitted: no "cannot find" error here.
    let _ = fetch(String::new());
}
