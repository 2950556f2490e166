use chopsticks::remote;

#[remote]
unsafe fn poke(addr: usize) -> u8 {
    // SAFETY: none; this must not compile anyway.
    unsafe { *(addr as *const u8) }
}

fn main() {
    let _ = poke;
}
