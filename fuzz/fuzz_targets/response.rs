//! One frame from the agent, decoded as the controller decodes it, with
//! the host's text cleaned as it is printed (see `chopsticks::__fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    chopsticks::__fuzz::response(data);
});
