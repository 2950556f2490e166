use chopsticks::remote;

#[remote]
fn first<'a>(items: Vec<String>) -> Option<String> {
    items.into_iter().next()
}

fn main() {
    let _ = first(vec![]);
}
