use chopsticks::remote;

#[remote]
extern "C" fn double(x: i32) -> i32 {
    x * 2
}

fn main() {
    let _ = double(2);
}
