//! A bounded soak: many calls on one tunnel, many tunnels one after another
//! and many at once, locally and over ssh. Afterwards the controller holds
//! what it held before: the same open files and threads, no child process
//! (agent or `ssh`), and resident memory within a small bound. The long run
//! with its figures is `cargo bench -p chopsticks-tests --bench soak`.

use std::time::Duration;

use chopsticks::Tunnel;
use chopsticks_tests::soak::{self, Usage};
use chopsticks_tests::test_ssh_config;

chopsticks::agent_test!();

/// Memory a soak may leave resident: the allocator keeps some of what
/// was freed. A leak of a few hundred bytes per call or per tunnel would
/// pass this bound by far (300,000 calls, 1,400 tunnels).
const RSS_SLACK_KIB: u64 = 24 * 1024;

fn assert_returned(what: &str, before: &Usage, after: &Usage) {
    eprintln!("{what}: before {before}; after {after}");
    assert_eq!(after.fds, before.fds, "{what}: open files");
    assert_eq!(after.threads, before.threads, "{what}: threads");
    assert_eq!(
        after.children,
        before.children,
        "{what}: processes left: {:?}",
        chopsticks_tests::children()
    );
    assert!(
        after.rss_kib <= before.rss_kib + RSS_SLACK_KIB,
        "{what}: resident memory grew from {before} to {after}"
    );
}

#[test]
fn the_controller_returns_to_its_starting_level() {
    // Warm up what is made once per process (the image's hash, the
    // logger, the allocator's arenas, the thread that writes corked calls).
    soak::tunnels(&|| Tunnel::local().unwrap(), 4, 2);
    soak::calls(&Tunnel::local().unwrap(), 1_000, 64);
    let config = test_ssh_config();
    let ssh = || {
        Tunnel::builder("cs-local")
            .ssh_config(&config)
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .unwrap()
    };
    soak::tunnels(&ssh, 2, 2);
    let before = soak::steady(Duration::from_secs(10));

    let t = Tunnel::local().unwrap();
    let took = soak::calls(&t, 300_000, 64);
    eprintln!("300000 calls on one local tunnel in {took:?}");
    drop(t);
    let after = soak::settle(&before, Duration::from_secs(10));
    assert_returned("300000 calls", &before, &after);

    let took = soak::tunnels(&|| Tunnel::local().unwrap(), 1000, 1);
    eprintln!("1000 local tunnels one after another in {took:?}");
    let took = soak::tunnels(&|| Tunnel::local().unwrap(), 400, 200);
    eprintln!("400 local tunnels, 200 at a time, in {took:?}");
    let after = soak::settle(&before, Duration::from_secs(10));
    assert_returned("1400 local tunnels", &before, &after);

    let took = soak::tunnels(&ssh, 20, 1);
    eprintln!("20 ssh tunnels one after another in {took:?}");
    let took = soak::tunnels(&ssh, 40, 20);
    eprintln!("40 ssh tunnels, 20 at a time, in {took:?}");
    let after = soak::settle(&before, Duration::from_secs(10));
    assert_returned("60 ssh tunnels", &before, &after);
}
