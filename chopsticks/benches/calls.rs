//! Call latency and throughput over a local tunnel. Prints its figures;
//! `cargo bench -p chopsticks --bench calls`.
//!
//! - floor: a 16-byte echo through `cat` over two pipes, the least any
//!   local round trip costs on this machine (it varies a lot on shared VMs:
//!   compare the call with the floor of the same run);
//! - sequential: one call at a time, waited for before the next;
//! - pipelined: calls from one thread with up to `WINDOW` in flight;
//! - 4 threads: four threads pipelining on the same tunnel.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chopsticks::{remote, Tunnel};

#[remote]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

const WINDOW: usize = 256;

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let t = Tunnel::local()?;
    // Warm up: threads of the agent's pool, allocator, page cache.
    for i in 0..2_000 {
        t.call(add, (i, 1))?;
    }

    let n = 20_000;
    let floor = pipe_echo(n);
    println!(
        "floor, pipe echo via cat: {:>8.1} us",
        floor.as_secs_f64() * 1e6 / n as f64
    );
    let best = (0..3)
        .map(|_| sequential(&t, n))
        .collect::<chopsticks::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap_or_default();
    println!(
        "sequential call latency: {:>8.1} us  (best of 3 x {n} calls; {:.2}x the floor)",
        best.as_secs_f64() * 1e6 / n as f64,
        best.as_secs_f64() / floor.as_secs_f64()
    );

    let n = 200_000;
    let took = pipelined(&t, n)?;
    println!(
        "pipelined, 1 thread:     {:>8.0} calls/s  ({n} calls, window {WINDOW})",
        n as f64 / took.as_secs_f64()
    );

    let threads = 4;
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| pipelined(&t, n / threads)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("bench thread").map(|_| ()))
    })?;
    println!(
        "pipelined, {threads} threads:    {:>8.0} calls/s  ({n} calls)",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pipe_echo(n: u64) -> Duration {
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cat");
    let (mut input, mut output) = (cat.stdin.take().unwrap(), cat.stdout.take().unwrap());
    let mut buf = [0u8; 16];
    let start = Instant::now();
    for _ in 0..n {
        input.write_all(&buf).unwrap();
        output.read_exact(&mut buf).unwrap();
    }
    let took = start.elapsed();
    drop(input);
    let _ = cat.wait();
    took
}

fn sequential(t: &Tunnel, n: u64) -> chopsticks::Result<Duration> {
    let start = Instant::now();
    for i in 0..n {
        let r = t.call(add, (i, 1))?;
        assert_eq!(r, i + 1);
    }
    Ok(start.elapsed())
}

fn pipelined(t: &Tunnel, n: u64) -> chopsticks::Result<Duration> {
    let start = Instant::now();
    let mut window = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if window.len() == WINDOW {
            let (j, p): (u64, chopsticks::Pending<u64>) = window.pop_front().expect("full");
            assert_eq!(p.wait()?, j + 1);
        }
        window.push_back((i, t.call_async(add, (i, 1))));
    }
    for (j, p) in window {
        assert_eq!(p.wait()?, j + 1);
    }
    Ok(start.elapsed())
}
