//! What an agent writes after its hello, cut into frames as the tunnel's
//! I/O thread cuts it (see `chopsticks::__fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = chopsticks::__fuzz::frames(data);
});
