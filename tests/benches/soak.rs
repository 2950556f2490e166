//! The long soak: `cargo bench -p chopsticks-tests --bench soak -- [CALLS]
//! [TUNNELS] [SSH_TUNNELS]` (default 1,000,000 calls on one local tunnel;
//! 2,000 local tunnels one after another, then 2,000 200 at a time, twice;
//! 200 ssh tunnels to `cs-local` one after another, then 50 at a time, twice, when the test hosts are up). Prints
//! what the controller holds before and after each phase, and the rates.

use std::time::Duration;

use chopsticks::Tunnel;
use chopsticks_tests::soak::{self, Usage};

fn report(what: &str, took: Duration, count: u64, before: &Usage) {
    let after = soak::settle(before, Duration::from_secs(10));
    println!(
        "{what}: {took:.2?} ({:.1} µs each); after: {after}",
        took.as_secs_f64() * 1e6 / count as f64
    );
    if (after.fds, after.threads, after.children) != (before.fds, before.threads, 0) {
        println!("  NOT RETURNED: {:?}", chopsticks_tests::children());
    }
}

#[chopsticks::main]
fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = args.first().copied().unwrap_or(1_000_000);
    let tunnels = args.get(1).copied().unwrap_or(2_000) as usize;
    let ssh_tunnels = args.get(2).copied().unwrap_or(200) as usize;
    let local = || Tunnel::local().expect("a local tunnel");
    soak::tunnels(&local, 4, 2);
    let before = soak::steady(Duration::from_secs(10));
    println!("before: {before}");

    let t = local();
    let took = soak::calls(&t, calls, 64);
    drop(t);
    report(
        &format!("{calls} calls on one local tunnel"),
        took,
        calls,
        &before,
    );

    let took = soak::tunnels(&local, tunnels, 1);
    let what = format!("{tunnels} local tunnels one after another");
    report(&what, took, tunnels as u64, &before);
    // Twice: memory the allocator keeps for concurrent threads shows in
    // the first round; a leak would grow again in the second.
    for round in ["", " (again)"] {
        let took = soak::tunnels(&local, tunnels, 200);
        let what = format!("{tunnels} local tunnels, 200 at a time{round}");
        report(&what, took, tunnels as u64, &before);
    }

    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts/ssh_config");
    if ssh_tunnels == 0 || !config.exists() {
        println!("ssh: skipped (no test hosts: start them with tests/setup.sh)");
        return;
    }
    let ssh = || {
        Tunnel::builder("cs-local")
            .ssh_config(&config)
            .connect_timeout(Duration::from_secs(60))
            .connect()
            .expect("an ssh tunnel")
    };
    let took = soak::tunnels(&ssh, ssh_tunnels, 1);
    let what = format!("{ssh_tunnels} ssh tunnels one after another");
    report(&what, took, ssh_tunnels as u64, &before);
    for round in ["", " (again)"] {
        let took = soak::tunnels(&ssh, ssh_tunnels, 50);
        let what = format!("{ssh_tunnels} ssh tunnels, 50 at a time{round}");
        report(&what, took, ssh_tunnels as u64, &before);
    }
}
