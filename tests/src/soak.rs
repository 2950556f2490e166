//! The soak's moves and its gauges, shared by the bounded soak test
//! (`tests/soak.rs`) and the long run (`benches/soak.rs`): many calls on one
//! tunnel, many tunnels one after another and many at once, and what the
//! controller holds before and after (open files, threads, resident
//! memory, child processes).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use chopsticks::Tunnel;

use crate::add;

/// What this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Child processes, running or not yet reaped (agents, `ssh`).
    pub children: usize,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fds, {} threads, {:.1} MiB resident, {} children",
            self.fds,
            self.threads,
            self.rss_kib as f64 / 1024.0,
            self.children
        )
    }
}

/// What this process holds now.
pub fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Usage {
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        threads: field("Threads:") as usize,
        rss_kib: field("VmRSS:"),
        children: crate::children().len(),
    }
}

/// Waits up to `bound` for threads and children to fall back to
/// `baseline` (tunnels' threads and processes end just after they close);
/// returns what is held then.
pub fn settle(baseline: &Usage, bound: Duration) -> Usage {
    let deadline = Instant::now() + bound;
    loop {
        let now = usage();
        let settled = now.threads <= baseline.threads
            && now.children <= baseline.children
            && now.fds <= baseline.fds;
        if settled || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `bound` until nothing changes: no child process, and the
/// same usage three times 100 ms apart (what closed tunnels leave ends
/// just after they close); returns that usage.
pub fn steady(bound: Duration) -> Usage {
    let deadline = Instant::now() + bound;
    let mut seen = [usage(), usage(), usage()];
    loop {
        std::thread::sleep(Duration::from_millis(100));
        seen.rotate_left(1);
        seen[2] = usage();
        let same = |a: &Usage, b: &Usage| (a.fds, a.threads) == (b.fds, b.threads);
        let quiet = seen[2].children == 0 && same(&seen[0], &seen[1]) && same(&seen[1], &seen[2]);
        if quiet || Instant::now() >= deadline {
            return seen[2];
        }
    }
}

/// Makes `n` calls on `t`, `window` in flight at a time; returns how long
/// they took.
///
/// # Panics
/// On a failed call or a wrong answer.
pub fn calls(t: &Tunnel, n: u64, window: usize) -> Duration {
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(window);
    for i in 0..n {
        let i = i as i64;
        in_flight.push_back((i, t.call_async(add, (i, 1))));
        if in_flight.len() >= window {
            let (i, call) = in_flight.pop_front().expect("a call");
            assert_eq!(call.wait().expect("a call"), i + 1);
        }
    }
    for (i, call) in in_flight {
        assert_eq!(call.wait().expect("a call"), i + 1);
    }
    started.elapsed()
}

/// Opens `n` tunnels with `connect`, `at_once` at a time, makes a call on
/// each and closes it; returns how long that took.
///
/// # Panics
/// On a failed connect or call.
pub fn tunnels(connect: &(dyn Fn() -> Tunnel + Sync), n: usize, at_once: usize) -> Duration {
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(at_once);
        std::thread::scope(|s| {
            for _ in 0..batch {
                s.spawn(|| {
                    let t = connect();
                    assert_eq!(t.call(add, (1, 2)).expect("a call"), 3);
                    t.close();
                });
            }
        });
        left -= batch;
    }
    started.elapsed()
}
