use chopsticks::remote;

pub struct Config {
    pub retries: u32,
}

#[remote]
fn apply(config: Config) -> u32 {
    config.retries
}

fn main() {
    let _ = apply(Config { retries: 3 });
}
