//! Fan-out costs against the loopback sshd of `tests/setup.sh` (names
//! `cs-many-N`): `cargo bench -p chopsticks --bench group`.
//!
//! - N parallel `ssh host true` (the floor) vs `Group::call` on a fresh
//!   group of N hosts (connect + upload-free start + one call), N = 1, 10, 50;
//! - the same 50-host run again with connection reuse (`control_persist`):
//!   what a tool run again within minutes costs;
//! - pipelined calls/s on 1 and on 10 SSH tunnels.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use chopsticks::{remote, Group, Tunnel};
use common::ssh_config;

#[remote]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

fn hosts(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("cs-many-{i}")).collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn parallel_ssh_true(n: usize, reuse: bool) -> Duration {
    let start = Instant::now();
    let children: Vec<_> = hosts(n)
        .iter()
        .map(|h| {
            let mut ssh = Command::new("ssh");
            ssh.arg("-F").arg(ssh_config());
            if let (true, Some(dir)) = (reuse, control_dir()) {
                ssh.arg("-o")
                    .arg(format!("ControlPath={}/%C", dir.display()))
                    .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=120"]);
            }
            ssh.args([h, "true"]).spawn().expect("ssh")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    start.elapsed()
}

fn group_call(n: usize, reuse: bool) -> Duration {
    let config = ssh_config();
    let start = Instant::now();
    let g = Group::new(hosts(n)).progress(false).configure(|b| {
        let b = b.ssh_config(&config);
        if reuse {
            b.control_persist(Duration::from_secs(120))
        } else {
            b
        }
    });
    let results = g.call(add, (1, 2));
    let took = start.elapsed();
    assert!(results.is_ok(), "{:?}", results.failures().next());
    took
}

fn pipelined(t: &Tunnel, n: u64) {
    let mut window = VecDeque::with_capacity(256);
    for i in 0..n {
        if window.len() == 256 {
            let p: chopsticks::Pending<u64> = window.pop_front().unwrap();
            p.wait().unwrap();
        }
        window.push_back(t.call_async(add, (i, 1)));
    }
    for p in window {
        p.wait().unwrap();
    }
}

/// Where `control_persist` keeps its sockets.
fn control_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh")))
        .map(|d| d.join("chopsticks-ssh"))
}

fn stop_masters() {
    let Some(Ok(entries)) = control_dir().map(std::fs::read_dir) else {
        return;
    };
    for e in entries.flatten() {
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", e.path().display()))
            .args(["-O", "exit", "x"])
            .output();
    }
}

/// Threads, open fds and resident KiB of this process.
fn usage() -> (i64, i64, i64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    (field("Threads:"), fds, field("VmRSS:"))
}

#[chopsticks::main]
fn main() {
    group_call(1, false); // the agent is cached on the host from here on
    println!(
        "{:>4}  {:>22}  {:>16}  ratio",
        "N", "parallel ssh true", "Group::call"
    );
    for n in [1, 10, 50] {
        let floor = median((0..3).map(|_| parallel_ssh_true(n, false)).collect());
        let call = median((0..3).map(|_| group_call(n, false)).collect());
        println!(
            "{n:>4}  {:>22}  {:>16}  {:.2}x",
            ms(floor),
            ms(call),
            call.as_secs_f64() / floor.as_secs_f64()
        );
    }
    stop_masters();
    let first = group_call(50, true);
    let floor = median((0..3).map(|_| parallel_ssh_true(50, true)).collect());
    let again = median((0..5).map(|_| group_call(50, true)).collect());
    println!(
        "50 hosts with connection reuse: first run {}, runs after it {} \
         (parallel `ssh true` over the same masters: {}, {:.2}x)",
        ms(first),
        ms(again),
        ms(floor),
        again.as_secs_f64() / floor.as_secs_f64()
    );
    // All 50 "hosts" above share this machine's CPUs; on a real fleet each
    // host does its own share in parallel, and a rerun takes about what one
    // host takes.
    let floor = median((0..5).map(|_| parallel_ssh_true(1, true)).collect());
    let again = median((0..5).map(|_| group_call(1, true)).collect());
    println!(
        " 1 host with connection reuse: runs after the first {} (`ssh true` over the master: {}, {:.2}x)",
        ms(again),
        ms(floor),
        again.as_secs_f64() / floor.as_secs_f64()
    );
    stop_masters();

    // What open tunnels cost the controller.
    for n in [50, 200] {
        let before = usage();
        let g = Group::new(hosts(n))
            .progress(false)
            .configure(|b| b.ssh_config(ssh_config()));
        assert!(g.call(add, (1, 1)).is_ok());
        let after = usage();
        let each = |d: i64| d as f64 / n as f64;
        println!(
            "controller cost of {n} ssh tunnels: {} threads, {} fds, {} KiB RSS \
             ({:.1} / {:.1} / {:.1} KiB each)",
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            each(after.0 - before.0),
            each(after.1 - before.1),
            each(after.2 - before.2),
        );
        drop(g);
    }

    let n = 200_000;
    let config = ssh_config();
    let one = Tunnel::builder("cs-many-1")
        .ssh_config(&config)
        .connect()
        .unwrap();
    pipelined(&one, 10_000);
    let start = Instant::now();
    pipelined(&one, n);
    println!(
        "pipelined over 1 ssh tunnel:   {:>8.0} calls/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    let tunnels: Vec<Tunnel> = hosts(10)
        .iter()
        .map(|h| Tunnel::builder(h).ssh_config(&config).connect().unwrap())
        .collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in &tunnels {
            s.spawn(move || pipelined(t, n / 10));
        }
    });
    println!(
        "pipelined over 10 ssh tunnels: {:>8.0} calls/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    let local = Tunnel::local().unwrap();
    pipelined(&local, 10_000);
    let start = Instant::now();
    pipelined(&local, n);
    println!(
        "pipelined over 1 local tunnel: {:>8.0} calls/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
}
