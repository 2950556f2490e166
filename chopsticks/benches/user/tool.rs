// The program `benches/user.rs` builds in a crate of its own (release, as a
// user's tool is built): the library's public API only, beside the floor
// measured by the same process in the same run.
//
// tool SSH_CONFIG transfer HOST MIB ROUNDS
// tool SSH_CONFIG calls HOST TUNNELS BATCHES
// tool SSH_CONFIG cold PREFIX N ROUNDS
// tool SSH_CONFIG rerun PREFIX N ROUNDS

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chopsticks::{remote, Group, Pending, Tunnel};

#[remote]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

#[remote]
fn nothing() {}

#[remote]
fn remove(path: String) {
    let _ = std::fs::remove_file(path);
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// "median (min-max)" of `v`, with `unit`.
fn spread(v: &[f64], unit: &str) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{:.0} {unit} ({min:.0}-{max:.0})", median(v))
}

fn ssh(config: &Path, host: &str) -> Command {
    let mut ssh = Command::new("ssh");
    ssh.arg("-F").arg(config).arg(host);
    ssh
}

/// The command `command` makes for each of `hosts`, all at once, once the
/// machine settled: its wall and the machine's CPU time in milliseconds.
fn parallel(hosts: &[String], command: impl Fn(&str) -> Command) -> (f64, f64) {
    settle();
    let (start, cpu) = (Instant::now(), busy_ms());
    let children: Vec<_> = hosts
        .iter()
        .map(|h| command(h).spawn().expect("ssh"))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    (ms_since(start), busy_ms() - cpu)
}

/// Runs both, the floor first in even rounds and ours first in odd ones:
/// neither always follows the other's tail.
fn in_turns<F, O>(round: usize, floor: impl FnOnce() -> F, ours: impl FnOnce() -> O) -> (F, O) {
    match round % 2 {
        0 => {
            let floor = floor();
            (floor, ours())
        }
        _ => {
            let ours = ours();
            (floor(), ours)
        }
    }
}

/// A fan-out and its floor, round by round: wall and machine CPU times
/// in milliseconds.
#[derive(Default)]
struct Turns {
    floor: Vec<f64>,
    floor_cpu: Vec<f64>,
    ours: Vec<f64>,
    ours_cpu: Vec<f64>,
}

impl Turns {
    fn push(&mut self, (floor, floor_cpu): (f64, f64), (ours, ours_cpu): (f64, f64)) {
        self.floor.push(floor);
        self.floor_cpu.push(floor_cpu);
        self.ours.push(ours);
        self.ours_cpu.push(ours_cpu);
    }

    /// Ours, the ratio of the medians and of each round's, the floor, and
    /// both CPU times.
    fn summary(&self) -> String {
        let ratios: Vec<f64> = self.ours.iter().zip(&self.floor).map(|(o, f)| o / f).collect();
        format!(
            "{} ({:.2}x; per round {:.2}x ({:.2}-{:.2})) against {}; the machine's CPU: ours \
             {}, floor {}",
            spread(&self.ours, "ms"),
            median(&self.ours) / median(&self.floor),
            median(&ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
            spread(&self.floor, "ms"),
            spread(&self.ours_cpu, "ms"),
            spread(&self.floor_cpu, "ms"),
        )
    }
}

/// Milliseconds since `start`.
fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The CPU time the whole machine spent so far, in milliseconds (from
/// `/proc/stat`, in 10 ms ticks): the hosts' side (sshd, the shells, the
/// agents) runs here too.
fn busy_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system (idle iowait) irq softirq steal
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum::<f64>()
        * 10.0
}

/// Lets the sessions of the phase before end (sshd's teardown, PAM's
/// session scripts) before the next is timed: a user runs one fleet
/// operation at a time, and the phases, run back to back, would each pay
/// the other's tail.
fn settle() {
    std::thread::sleep(Duration::from_secs(1));
}

fn mbs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// `ssh host 'cat > REMOTE'` fed `local` through a pipe, over a
/// connection of its own as a tunnel's is, timed from when the
/// connection is up (the remote command says so) until ssh exits;
/// `then` follows `cat` (` && sync f`).
fn cat_to(config: &Path, host: &str, local: &Path, remote: &str, then: &str) -> Duration {
    let mut child = ssh(config, host)
        .arg(format!("rm -f {remote}; echo go; cat > {remote}{then}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut go = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut go)
        .unwrap();
    let start = Instant::now();
    let mut input = child.stdin.take().unwrap();
    std::io::copy(&mut std::fs::File::open(local).unwrap(), &mut input).unwrap();
    drop(input);
    assert!(child.wait().unwrap().success());
    start.elapsed()
}

/// `ssh host 'cat REMOTE'` into `local` through a pipe, over a connection
/// of its own, timed from when the connection is up.
fn cat_from(config: &Path, host: &str, remote: &str, local: &Path) -> Duration {
    let mut child = ssh(config, host)
        .arg(format!("echo go; read go; cat {remote}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut go = String::new();
    output.read_line(&mut go).unwrap();
    let start = Instant::now();
    input.write_all(b"go\n").unwrap();
    std::io::copy(&mut output, &mut std::fs::File::create(local).unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    start.elapsed()
}

fn transfer(config: &Path, host: &str, mib: u64, rounds: usize) {
    let bytes = mib << 20;
    let dir = std::env::temp_dir().join(format!("cs-user-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let local = dir.join("source");
    {
        // Incompressible: xorshift.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&local).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
    }
    let back = dir.join("back");
    let remote = format!("/tmp/cs-user-bench-{}-{mib}", std::process::id());
    let (mut cat, mut cat_sync, mut put) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cat_back, mut fetch) = (Vec::new(), Vec::new());
    let (mut connect, mut first_put) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        cat.push(mbs(bytes, cat_to(config, host, &local, &remote, "")));
        let sync = format!(" && sync {remote}");
        cat_sync.push(mbs(bytes, cat_to(config, host, &local, &remote, &sync)));
        cat_back.push(mbs(bytes, cat_from(config, host, &remote, &back)));

        // A fresh tunnel each round: its first put is the one timed.
        let start = Instant::now();
        let t = Tunnel::builder(host)
            .ssh_config(config)
            .connect()
            .expect("connect");
        connect.push(start.elapsed().as_secs_f64() * 1e3);
        t.call(remove, (remote.clone(),)).expect("remove");
        let start = Instant::now();
        let done = t.put(&local, &remote).run().expect("put");
        let took = start.elapsed();
        assert!(done.changed && done.bytes == bytes, "{done:?}");
        put.push(mbs(bytes, took));
        if round == 0 {
            first_put.push(mbs(bytes, took));
        }
        let _ = std::fs::remove_file(&back);
        let start = Instant::now();
        let done = t.fetch(&remote, &back).run().expect("fetch");
        fetch.push(mbs(bytes, start.elapsed()));
        assert!(done.changed, "{done:?}");
        t.call(remove, (remote.clone(),)).expect("remove");
        drop(t);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (m_cat, m_sync, m_put) = (median(&cat), median(&cat_sync), median(&put));
    let (m_back, m_fetch) = (median(&cat_back), median(&fetch));
    println!(
        "{host} {mib} MiB put: {} (first {:.0}); floor ssh 'cat > f' {} ({:.2}x), \
         'cat > f && sync f' {} ({:.2}x)",
        spread(&put, "MB/s"),
        first_put[0],
        spread(&cat, "MB/s"),
        m_put / m_cat,
        spread(&cat_sync, "MB/s"),
        m_put / m_sync
    );
    println!(
        "{host} {mib} MiB fetch: {}; floor ssh 'cat f' {} ({:.2}x); connect {}",
        spread(&fetch, "MB/s"),
        spread(&cat_back, "MB/s"),
        m_fetch / m_back,
        spread(&connect, "ms"),
    );
}

/// Lines per second through `conns` connections of `ssh host cat` (round
/// robin): 1000 lines of 16 bytes, one write each (as a call is one
/// frame), then read back in order, `batches` times.
fn ssh_cat(config: &Path, host: &str, conns: usize, batches: usize) -> Vec<f64> {
    let mut children = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..conns {
        let mut c = ssh(config, host);
        let mut child = c
            .arg("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ssh cat");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        children.push(child);
        ends.push((input, output));
    }
    let mut rates = Vec::new();
    let mut line = String::new();
    // The connections are up (as tunnels are) before the batches.
    for (input, output) in &mut ends {
        input.write_all(b"hello\n").unwrap();
        output.read_line(&mut line).unwrap();
    }
    for _ in 0..batches {
        let start = Instant::now();
        for i in 0..1000usize {
            let line = format!("line {i:>10}\n");
            ends[i % conns].0.write_all(line.as_bytes()).unwrap();
        }
        for i in 0..1000usize {
            line.clear();
            ends[i % conns].1.read_line(&mut line).unwrap();
        }
        rates.push(1000.0 / start.elapsed().as_secs_f64());
    }
    drop(ends);
    for mut child in children {
        let _ = child.wait();
    }
    rates
}

fn calls(config: &Path, host: &str, tunnels: usize, batches: usize) {
    let floor = ssh_cat(config, host, tunnels, batches);
    let start = Instant::now();
    // Connected in parallel, as a group does.
    let ts: Vec<Tunnel> = std::thread::scope(|s| {
        let connecting: Vec<_> = (0..tunnels)
            .map(|_| {
                s.spawn(|| {
                    Tunnel::builder(host)
                        .ssh_config(config)
                        .connect()
                        .expect("connect")
                })
            })
            .collect();
        connecting
            .into_iter()
            .map(|c| c.join().expect("connecting thread"))
            .collect()
    });
    let connect = start.elapsed();
    let mut rates = Vec::new();
    for _ in 0..batches {
        let start = Instant::now();
        let pending: Vec<Pending<u64>> = (0..1000u64)
            .map(|i| ts[i as usize % tunnels].call_async(add, (i, 1)))
            .collect();
        for (i, p) in pending.into_iter().enumerate() {
            assert_eq!(p.wait().expect("call"), i as u64 + 1);
        }
        let took = start.elapsed();
        rates.push(1000.0 / took.as_secs_f64());
    }
    let list: Vec<String> = rates.iter().map(|r| format!("{:.0}k", r / 1e3)).collect();
    println!(
        "{host} 5x1000 call_async over {tunnels} tunnel(s): median {:.0}k calls/s, first batch \
         {:.0}k (batches {}); floor {tunnels} ssh cat {:.0}k lines/s ({:.2}x); connecting {:.0} ms",
        median(&rates) / 1e3,
        rates[0] / 1e3,
        list.join(" "),
        median(&floor) / 1e3,
        median(&rates) / median(&floor),
        connect.as_secs_f64() * 1e3
    );
    // Sequential calls, for the record.
    let start = Instant::now();
    for i in 0..1000u64 {
        ts[0].call(add, (i, 1)).expect("call");
    }
    println!(
        "{host} sequential call: {:.1} us",
        start.elapsed().as_secs_f64() * 1e3
    );
}

/// `n` hosts `PREFIX1`..`PREFIXn`, one call each over new connections, vs
/// `n` parallel `ssh host true`.
fn cold(config: &Path, prefix: &str, n: usize, rounds: usize) {
    let hosts: Vec<String> = (1..=n).map(|i| format!("{prefix}{i}")).collect();
    let (mut turns, mut closed) = (Turns::default(), Vec::new());
    let (mut connected, mut first_call) = (Vec::new(), Vec::new());
    let floor_run = || {
        parallel(&hosts, |h| {
            let mut c = ssh(config, h);
            c.arg("true").stdin(Stdio::null());
            c
        })
    };
    let ours_run = || {
        settle();
        let (start, cpu) = (Instant::now(), busy_ms());
        let path = config.to_path_buf();
        let group = Group::new(hosts.clone())
            .progress(false)
            .configure(move |b| b.ssh_config(&path));
        let results = group.call(nothing, ());
        assert!(results.is_ok(), "{:?}", results.failures().next());
        let called = ms_since(start);
        drop(group);
        let took = ms_since(start);
        (took, busy_ms() - cpu, took - called)
    };
    for round in 0..rounds {
        let ((f, f_cpu), (o, o_cpu, c)) = in_turns(round, floor_run, ours_run);
        turns.push((f, f_cpu), (o, o_cpu));
        closed.push(c);

        // The same by hand: where the time goes.
        settle();
        let start = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            for h in &hosts {
                let tx = tx.clone();
                s.spawn(move || {
                    let t = Tunnel::builder(h.as_str())
                        .ssh_config(config)
                        .connect()
                        .expect("connect");
                    let up = start.elapsed();
                    t.call(nothing, ()).expect("call");
                    let called = start.elapsed();
                    let _ = tx.send((up, called));
                    drop(t);
                });
            }
        });
        drop(tx);
        let times: Vec<(Duration, Duration)> = rx.iter().collect();
        connected.push(
            times
                .iter()
                .map(|t| t.0.as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
        );
        first_call.push(
            times
                .iter()
                .map(|t| (t.1 - t.0).as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
        );
    }
    // One host at a time: the phases of one.
    let (mut alone, mut up, mut call, mut close) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let mut c = ssh(config, &hosts[0]);
        c.arg("true").stdin(Stdio::null());
        let start = Instant::now();
        assert!(c.status().unwrap().success());
        alone.push(start.elapsed().as_secs_f64() * 1e3);
        let builder = Tunnel::builder(hosts[0].as_str()).ssh_config(config);
        phases(builder, [&mut up, &mut call, &mut close]);
    }
    println!(
        "one host alone: ssh true {}; connect (ssh, bootstrap, agent exec, hello) {}, first \
         call {}, close {}",
        spread(&alone, "ms"),
        spread(&up, "ms"),
        spread(&call, "ms"),
        spread(&close, "ms"),
    );
    println!(
        "{n} hosts, one call each, new connections: Group::call against {n} parallel ssh true: \
         {}; the group's close {}; by hand: last connected at {}, slowest call after connect {}",
        turns.summary(),
        spread(&closed, "ms"),
        spread(&connected, "ms"),
        spread(&first_call, "ms"),
    );
}

/// A zero-change rerun's connection part: `n` hosts again over the ssh
/// masters a first run left (`control_persist`), a new `Group` (as a tool
/// run again makes) with one trivial call each, vs `n` parallel `ssh host
/// true` over the same masters. (Not sake's four tasks: their plan's
/// reads need the fleet bench's containers.)
fn rerun(config: &Path, prefix: &str, n: usize, rounds: usize) {
    let hosts: Vec<String> = (1..=n).map(|i| format!("{prefix}{i}")).collect();
    let runtime = PathBuf::from(format!("/tmp/cs-ub-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", &runtime);
    let masters = runtime.join("chopsticks-ssh");
    let group = || {
        let path = config.to_path_buf();
        Group::new(hosts.clone())
            .progress(false)
            .configure(move |b| {
                b.ssh_config(&path)
                    .control_persist(Duration::from_secs(120))
            })
    };
    // The first run: masters up, agents cached.
    assert!(group().call(nothing, ()).is_ok());
    let over_master = |h: &str| {
        let mut c = ssh(config, h);
        c.arg("-o")
            .arg(format!("ControlPath={}/%C", masters.display()))
            .arg("true")
            .stdin(Stdio::null());
        c
    };
    let mut turns = Turns::default();
    let floor_run = || parallel(&hosts, over_master);
    let ours_run = || {
        settle();
        let (start, cpu) = (Instant::now(), busy_ms());
        let results = group().call(nothing, ());
        assert!(results.is_ok(), "{:?}", results.failures().next());
        drop(results);
        (ms_since(start), busy_ms() - cpu)
    };
    for round in 0..rounds {
        let (floor, ours) = in_turns(round, floor_run, ours_run);
        turns.push(floor, ours);
    }
    // One host after the other, the machine's CPU per host: ssh true
    // (mux client, sshd, the login shell), then with the bootstrap's
    // `exec /bin/sh -c` too, then a tunnel (the bootstrap, the agent's
    // exec, hello, one call, close; the session opened on the master
    // itself, without an ssh mux client).
    let per_host = |run: &dyn Fn()| {
        let (start, cpu) = (Instant::now(), busy_ms());
        for _ in 0..PER_HOST_RUNS {
            run();
        }
        let runs = PER_HOST_RUNS as f64;
        (ms_since(start) / runs, (busy_ms() - cpu) / runs)
    };
    settle();
    let true_cost = per_host(&|| {
        assert!(over_master(&hosts[0]).status().unwrap().success());
    });
    let sh_cost = per_host(&|| {
        let mut c = over_master(&hosts[0]);
        c.arg("; exec /bin/sh -c true");
        assert!(c.status().unwrap().success());
    });
    let tunnel_cost = per_host(&|| {
        let t = Tunnel::builder(hosts[0].as_str())
            .ssh_config(config)
            .control_persist(Duration::from_secs(120))
            .connect()
            .expect("connect");
        t.call(nothing, ()).expect("call");
    });
    let (mut alone, mut up, mut call, mut close) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..9 {
        let start = Instant::now();
        assert!(over_master(&hosts[0]).status().unwrap().success());
        alone.push(start.elapsed().as_secs_f64() * 1e3);
        let builder = Tunnel::builder(hosts[0].as_str())
            .ssh_config(config)
            .control_persist(Duration::from_secs(120));
        phases(builder, [&mut up, &mut call, &mut close]);
    }
    for h in &hosts {
        let _ = ssh(config, h)
            .arg("-o")
            .arg(format!("ControlPath={}/%C", masters.display()))
            .args(["-O", "exit"])
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(&runtime);
    let ms1 = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        format!("{:.1} ms ({min:.1}-{max:.1})", median(v))
    };
    println!(
        "one host over its master: ssh true {}; connect (a session on the master, bootstrap, \
         agent exec, hello) {}, first call {}, close {}",
        ms1(&alone),
        ms1(&up),
        ms1(&call),
        ms1(&close)
    );
    println!(
        "one host after the other over its master, wall and the machine's CPU per host: ssh \
         true {:.1} / {:.1} ms; with the bootstrap's sh {:.1} / {:.1} ms; a tunnel, one call, \
         close {:.1} / {:.1} ms",
        true_cost.0, true_cost.1, sh_cost.0, sh_cost.1, tunnel_cost.0, tunnel_cost.1
    );
    println!(
        "{n} hosts again over their masters, one call each: Group::call against {n} parallel \
         ssh true over the same masters: {}",
        turns.summary(),
    );
}

/// How many times each per-host cost is measured, one after the other.
const PER_HOST_RUNS: usize = 100;

#[chopsticks::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = PathBuf::from(&args[1]);
    let num = |i: usize| args[i].parse::<usize>().expect("a number");
    match args[2].as_str() {
        "transfer" => transfer(&config, &args[3], num(4) as u64, num(5)),
        "calls" => calls(&config, &args[3], num(4), num(5)),
        "cold" => cold(&config, &args[3], num(4), num(5)),
        "rerun" => rerun(&config, &args[3], num(4), num(5)),
        what => panic!("unknown measurement {what}"),
    }
}

/// One host's phases, in milliseconds, added to `[up, call, close]`: the
/// connect (ssh, bootstrap, agent, hello), a first call, the close.
fn phases(builder: chopsticks::TunnelBuilder, [up, call, close]: [&mut Vec<f64>; 3]) {
    let start = Instant::now();
    let t = builder.connect().expect("connect");
    up.push(start.elapsed().as_secs_f64() * 1e3);
    let start = Instant::now();
    t.call(nothing, ()).expect("call");
    call.push(start.elapsed().as_secs_f64() * 1e3);
    let start = Instant::now();
    drop(t);
    close.push(start.elapsed().as_secs_f64() * 1e3);
}
