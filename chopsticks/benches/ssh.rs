//! SSH costs side by side, against the test hosts of `tests/setup.sh`:
//! `cargo bench -p chopsticks --bench ssh [-- HOST...]` (default: cs-local,
//! the loopback sshd, and cs-deb12, a container).
//!
//! - connect: `ssh host true` vs connect + first call with the agent cached
//!   (warm) vs with an empty cache (cold: upload included);
//! - round trip: a 16-byte echo through `ssh host cat` vs a sequential call
//!   over an open tunnel;
//! - bursts: N calls issued with `call_async` from one thread, then waited
//!   for in order, vs 16-byte messages streamed through `ssh host cat`.

use std::io::{Read, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use chopsticks::{remote, Tunnel};
use common::ssh_config;

#[remote]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

fn ssh(host: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F").arg(ssh_config()).arg(host);
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn connect_and_call(host: &str) -> (Duration, bool) {
    let start = Instant::now();
    let t = Tunnel::builder(host)
        .ssh_config(ssh_config())
        .connect()
        .expect("connect");
    assert_eq!(t.call(add, (1, 2)).expect("call"), 3);
    let took = start.elapsed();
    (took, t.uploaded())
}

/// `ssh host cat`, with its input and output.
fn ssh_cat(host: &str) -> (std::process::Child, ChildStdin, ChildStdout) {
    let mut child = ssh(host)
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh cat");
    let input = child.stdin.take().expect("stdin");
    let output = child.stdout.take().expect("stdout");
    (child, input, output)
}

fn echo_round_trip(host: &str, n: u32) -> Duration {
    let (mut child, mut input, mut output) = ssh_cat(host);
    let mut buf = [7u8; 16];
    for _ in 0..100 {
        input.write_all(&buf).unwrap();
        output.read_exact(&mut buf).unwrap();
    }
    let start = Instant::now();
    for _ in 0..n {
        input.write_all(&buf).unwrap();
        output.read_exact(&mut buf).unwrap();
    }
    let took = start.elapsed() / n;
    drop(input);
    let _ = child.wait();
    took
}

fn call_round_trip(host: &str, n: u64) -> Duration {
    let t = Tunnel::builder(host)
        .ssh_config(ssh_config())
        .connect()
        .expect("connect");
    for i in 0..100 {
        t.call(add, (i, 1)).unwrap();
    }
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(t.call(add, (i, 1)).unwrap(), i + 1);
    }
    start.elapsed() / n as u32
}

/// Messages per second through `ssh host cat`: `n` 16-byte messages written
/// by one thread while another reads them back.
fn echo_stream(host: &str, n: usize) -> f64 {
    let (mut child, mut input, mut output) = ssh_cat(host);
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        let chunk = vec![7u8; 16 * 1024];
        let mut left = n * 16;
        while left > 0 {
            let k = left.min(chunk.len());
            input.write_all(&chunk[..k]).unwrap();
            left -= k;
        }
    });
    let mut buf = vec![0u8; n * 16];
    output.read_exact(&mut buf).unwrap();
    let took = start.elapsed();
    writer.join().unwrap();
    let _ = child.wait();
    n as f64 / took.as_secs_f64()
}

/// Calls per second when `n` calls are issued with `call_async` from one
/// thread and then waited for in order.
fn burst(t: &Tunnel, n: u64) -> f64 {
    let start = Instant::now();
    let pending: Vec<_> = (0..n).map(|i| t.call_async(add, (i, 1))).collect();
    for (i, p) in pending.into_iter().enumerate() {
        assert_eq!(p.wait().unwrap(), i as u64 + 1);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn bursts(host: &str) {
    let t = Tunnel::builder(host)
        .ssh_config(ssh_config())
        .connect()
        .expect("connect");
    println!(
        "ssh cat stream:               {:>10.0} msg/s",
        echo_stream(host, 1_000_000)
    );
    for n in [1_000, 10_000, 100_000] {
        let best = (0..3).map(|_| burst(&t, n)).fold(0.0, f64::max);
        println!("burst of {n:>6} call_async:    {best:>10.0} calls/s (best of 3)");
    }
}

fn bench(host: &str) {
    println!("== {host}");
    let runs = 7;
    let ssh_true = median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                assert!(ssh(host).arg("true").status().expect("ssh").success());
                start.elapsed()
            })
            .collect(),
    );
    connect_and_call(host); // make sure the agent is cached
    let warm = median(
        (0..runs)
            .map(|_| {
                let (took, uploaded) = connect_and_call(host);
                assert!(!uploaded);
                took
            })
            .collect(),
    );
    let cold = median(
        (0..5)
            .map(|_| {
                let wipe = "rm -rf ~/.cache/chopsticks-* /dev/shm/chopsticks-$(id -u) \
                            /tmp/chopsticks-$(id -u) /var/tmp/chopsticks-$(id -u)";
                assert!(ssh(host).arg(wipe).status().unwrap().success());
                let (took, uploaded) = connect_and_call(host);
                assert!(uploaded);
                took
            })
            .collect(),
    );
    println!("ssh host true:                {:>10}", ms(ssh_true));
    println!(
        "connect + first call, warm:   {:>10}  ({:.2}x ssh true)",
        ms(warm),
        warm.as_secs_f64() / ssh_true.as_secs_f64()
    );
    println!(
        "connect + first call, cold:   {:>10}  (+{} for the upload)",
        ms(cold),
        ms(cold.saturating_sub(warm))
    );
    let echo = echo_round_trip(host, 2000);
    let call = call_round_trip(host, 5000);
    println!("echo round trip (ssh cat):    {:>10}", us(echo));
    println!(
        "sequential call over ssh:     {:>10}  ({:.2}x the echo)",
        us(call),
        call.as_secs_f64() / echo.as_secs_f64()
    );
    bursts(host);
}

#[chopsticks::main]
fn main() {
    let exe = std::env::current_exe().expect("current exe");
    let data = std::fs::read(&exe).expect("read exe");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    println!(
        "agent: {} bytes, {} bytes gzip-compressed (what a cold connect uploads)",
        data.len(),
        gz.len()
    );
    for host in common::hosts_or_default() {
        bench(&host);
    }
}
