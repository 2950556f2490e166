use chopsticks::remote;

#[remote]
const fn double(x: i32) -> i32 {
    x * 2
}

const FOUR: i32 = double(2);

fn main() {
    let _ = FOUR;
}
