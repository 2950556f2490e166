use chopsticks::remote;

#[remote]
async fn lookup<T: Default>(key: &str) -> T {
    let _ = key;
    T::default()
}

fn main() {
    let _ = lookup::<u8>("key");
}
