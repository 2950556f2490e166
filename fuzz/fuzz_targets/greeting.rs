//! What an agent writes up to its hello: junk, markers, the preamble and
//! the hello frame, read whole and in pieces (see `chopsticks::__fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    chopsticks::__fuzz::greeting(data);
});
