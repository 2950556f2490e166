use chopsticks::remote;

#[remote]
fn largest<T: Ord>(items: Vec<T>) -> Option<T> {
    items.into_iter().max()
}

fn main() {
    let _ = largest(vec![1, 2, 3]);
}
