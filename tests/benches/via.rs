//! N hosts reached through one bastion's agent vs N hosts reached directly
//! (`cargo bench -p chopsticks-tests --bench via -- [N] [ROUNDS]`, default
//! 50 hosts, 3 rounds; needs the test hosts of `tests/setup.sh`).
//!
//! Directly: N names of the loopback sshd's fleet port (`cs-many-*`), one
//! ssh each from here. Through the bastion: N names of `cs-inner`
//! (`inner-*` in `cs-jump`'s ssh config), whose ssh handshakes `cs-jump`
//! does. Both connect, make one call on every host and close, agents
//! cached. Printed: wall time, and the CPU this process and its children
//! (the ssh clients) used: what a controller spends per host.

use std::time::{Duration, Instant};

use chopsticks::{Group, Tunnel};
use chopsticks_tests::add;

/// CPU seconds of this process and of its reaped children.
fn cpu() -> f64 {
    let of = |who| {
        // SAFETY: rusage is plain data that getrusage fills.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to it.
        unsafe { libc::getrusage(who, &mut usage) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(usage.ru_utime) + t(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

fn measure(what: &str, n: usize, run: impl Fn()) {
    let (started, cpu0) = (Instant::now(), cpu());
    run();
    let (wall, used) = (started.elapsed(), cpu() - cpu0);
    println!(
        "{what}: {wall:.2?} wall, {used:.2} CPU-s here ({:.1} ms per host)",
        used * 1e3 / n as f64
    );
}

#[chopsticks::main]
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(50);
    let rounds = args.get(1).copied().unwrap_or(3);
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts/ssh_config");
    assert!(config.exists(), "no test hosts: run tests/setup.sh");
    let direct = || {
        let config = config.clone();
        Group::new((1..=n).map(|i| format!("cs-many-{i}"))).configure(move |b| {
            b.ssh_config(&config)
                .connect_timeout(Duration::from_secs(60))
        })
    };
    let bastion = Tunnel::builder("cs-jump")
        .ssh_config(&config)
        .connect()
        .expect("the bastion");
    let via = || {
        Group::new(
            (1..=n)
                .map(|i| {
                    Tunnel::builder(format!("inner-{i}"))
                        .via(&bastion)
                        .connect_timeout(Duration::from_secs(60))
                })
                .collect::<Vec<_>>(),
        )
    };
    let call = |group: Group| {
        let results = group.call(add, (1, 2));
        let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        drop(group);
    };
    // Warm: agents cached on both sides.
    call(direct());
    call(via());
    for round in 1..=rounds {
        measure(&format!("round {round}: {n} hosts directly"), n, || {
            call(direct())
        });
        measure(
            &format!("round {round}: {n} hosts through one bastion"),
            n,
            || call(via()),
        );
    }
}
