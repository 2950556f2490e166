//! An executable stripped of its debug sections before it is shipped: a
//! hostile `agent_binary` may be any bytes (see `chopsticks::__fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = chopsticks::__fuzz::strip(data);
});
