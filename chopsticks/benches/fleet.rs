//! sake's fleet benchmark (alajmo/sake-performance: four idempotent tasks
//! on many hosts: install a package, add a user, add a file, copy a file)
//! over N containers of the test image: `cargo bench -p chopsticks --bench
//! fleet -- [N...]` (default 10 50).
//!
//! Each host runs the four tasks as one plan on its agent (one call). For
//! each N, in this order:
//! - cold first run: fresh containers, no agent cached, no ssh connection;
//! - warm rerun: connection reuse on (`control_persist`), agent cached, zero
//!   changes; the median of `FLEET_RERUNS` rounds (default 5), each beside
//!   the floor over the masters;
//! - cold rerun: new ssh connections, agent cached, zero changes;
//! - warm first run: the four changes undone, then a run over the masters.
//!
//! Beside them, in the same run, the floor: N parallel `ssh host true`, with
//! new connections and over the masters. The containers (`chopsticks-bench-*`,
//! on a network of their own) are started here and removed at the end; the
//! test hosts (`tests/setup.sh`) must be up, for their image and keys.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use chopsticks::ops::{self, Change, Mode, Recap, Report};
use chopsticks::{remote, Group};

const NET: &str = "chopsticks-bench";
const SUBNET: &str = "172.30.0.0/16";
const PREFIX: &str = "chopsticks-bench-";

/// The four tasks, planned and applied on the host in one call.
#[remote]
fn sake_tasks(copied: Vec<u8>, mode: Mode) -> Report {
    let mut report = Report::new();
    report.run("package", || {
        ops::package(ops::Package::new(["cs-hello"]), mode)
    });
    report.run("user", || ops::user(ops::User::new("sake"), mode));
    report.run("file", || {
        let file = ops::File::new("/srv/sake-file").content("added by the fleet bench\n");
        ops::file(file, mode)
    });
    report.run("copy", || {
        ops::file(ops::File::new("/srv/sake-copy").content(copied), mode)
    });
    report
}

/// Undoes the four tasks: the next run has them to do again.
#[remote]
fn undo_tasks() -> Result<(), ops::OpError> {
    let apply = |r: Result<Change, ops::OpError>| r.map(drop);
    apply(ops::package(
        ops::Package::new(["cs-hello"]).absent(),
        Mode::Apply,
    ))?;
    apply(ops::user(ops::User::new("sake").absent(), Mode::Apply))?;
    apply(ops::file(
        ops::File::new("/srv/sake-file").absent(),
        Mode::Apply,
    ))?;
    apply(ops::file(
        ops::File::new("/srv/sake-copy").absent(),
        Mode::Apply,
    ))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker(args: &[&str]) -> String {
    run(Command::new("timeout").arg("120").arg("docker").args(args))
}

/// The containers of this run, and the ssh_config that names them
/// `csb-1` ... `csb-N`.
struct Fleet {
    ids: Vec<String>,
    config: PathBuf,
    dir: PathBuf,
}

impl Fleet {
    fn start(n: usize, state: &Path) -> Fleet {
        let image = docker(&[
            "inspect",
            "-f",
            "{{.Config.Image}}",
            "chopsticks-test-deb12",
        ]);
        if Command::new("docker")
            .args(["network", "inspect", NET])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| !s.success())
        {
            docker(&[
                "network",
                "create",
                "--internal",
                "--subnet",
                SUBNET,
                "--label",
                "chopsticks.bench=1",
                NET,
            ]);
        }
        let key = std::fs::read_to_string(state.join("id_ed25519.pub")).unwrap();
        let host_key = std::fs::read_to_string(state.join("ssh_host_ed25519_key")).unwrap();
        let ip = |i: usize| format!("172.30.{}.{}", i / 200, 10 + i % 200);
        let started = Instant::now();
        // A few `docker run` at once: the engine serialises much of it.
        let mut ids = Vec::new();
        for chunk in (1..=n).collect::<Vec<_>>().chunks(8) {
            let children: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    Command::new("docker")
                        .args(["run", "-d", "--name", &format!("{PREFIX}{i}")])
                        .args(["--network", NET, "--ip", &ip(i)])
                        .args(["--label", "chopsticks.bench=1"])
                        .arg("-e")
                        .arg(format!("CS_AUTHORIZED_KEYS={}", key.trim()))
                        .arg("-e")
                        .arg(format!("CS_HOST_KEY={}", host_key.trim()))
                        .arg(&image)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("docker run")
                })
                .collect();
            for child in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "docker run: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                ids.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            }
        }
        let dir = state.join("bench");
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::new();
        let mut known = String::new();
        let host_pub = std::fs::read_to_string(state.join("ssh_host_ed25519_key.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        for i in 1..=n {
            let _ = write!(
                config,
                "Host csb-{i}\n    HostName {}\n    User root\n    IdentityFile {}\n    \
                 IdentitiesOnly yes\n    UserKnownHostsFile {}\n    LogLevel ERROR\n    \
                 ConnectTimeout 10\n    BatchMode yes\n",
                ip(i),
                state.join("id_ed25519").display(),
                dir.join("known_hosts").display()
            );
            let _ = writeln!(known, "{} {}", ip(i), host_pub.join(" "));
        }
        std::fs::write(dir.join("ssh_config"), config).unwrap();
        std::fs::write(dir.join("known_hosts"), known).unwrap();
        let fleet = Fleet {
            ids,
            config: dir.join("ssh_config"),
            dir,
        };
        // Every sshd answers before anything is measured (bounded).
        let deadline = Instant::now() + Duration::from_secs(60 + n as u64);
        let mut waiting: Vec<usize> = (1..=n).collect();
        while !waiting.is_empty() {
            assert!(
                Instant::now() < deadline,
                "hosts {waiting:?} did not accept ssh"
            );
            waiting.retain(|&i| {
                !fleet
                    .ssh(&format!("csb-{i}"), false)
                    .status()
                    .unwrap()
                    .success()
            });
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "fleet: {n} containers up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        fleet
    }

    fn hosts(&self) -> Vec<String> {
        (1..=self.ids.len()).map(|i| format!("csb-{i}")).collect()
    }

    /// Where the floor's ssh masters live: a short path (a socket's path
    /// has at most 107 bytes, and ssh adds 57).
    fn control_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("csb-{}", std::process::id()))
    }

    fn ssh(&self, host: &str, reuse: bool) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-F").arg(&self.config);
        if reuse {
            ssh.arg("-o")
                .arg(format!("ControlPath={}/%C", self.control_dir().display()))
                .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=300"]);
        }
        ssh.args([host, "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        ssh
    }

    /// N parallel `ssh host true`.
    fn ssh_true(&self, reuse: bool) -> Duration {
        std::fs::create_dir_all(self.control_dir()).unwrap();
        let start = Instant::now();
        let children: Vec<_> = self
            .hosts()
            .iter()
            .map(|h| self.ssh(h, reuse).spawn().expect("ssh"))
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "ssh true failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        start.elapsed()
    }

    fn group(&self, reuse: bool) -> Group {
        let config = self.config.clone();
        Group::new(self.hosts())
            .progress(false)
            .forks(64)
            .call_timeout(Duration::from_secs(600))
            .configure(move |b| {
                let b = b
                    .ssh_config(&config)
                    .connect_timeout(Duration::from_secs(60));
                match reuse {
                    true => b.control_persist(Duration::from_secs(300)),
                    false => b,
                }
            })
    }

    /// One run of the four tasks on every host: its wall time, the
    /// controller's CPU time (this process and its `ssh` children), and the
    /// changes it made.
    fn tasks(&self, reuse: bool, copied: &[u8]) -> (Duration, Duration, usize) {
        let (start, cpu) = (Instant::now(), controller_cpu());
        let results = self
            .group(reuse)
            .call(sake_tasks, (copied.to_vec(), Mode::Apply));
        let took = start.elapsed();
        // The group's tunnels (and their ssh clients) are gone by now.
        let cpu = controller_cpu() - cpu;
        let mut recap = Recap::new();
        recap.add(&results);
        assert!(
            !recap.unreachable() && !recap.failed(),
            "{recap}{:?}",
            results.failures().next()
        );
        let changed = recap.hosts.iter().map(|h| h.changed).sum();
        (took, cpu, changed)
    }

    fn undo(&self) {
        let results = self.group(true).call(undo_tasks, ());
        assert!(results.is_ok(), "{:?}", results.failures().next());
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let mut rm = Command::new("docker");
        rm.args(["rm", "-f"]).args(&self.ids).stdout(Stdio::null());
        let _ = rm.status();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.control_dir());
    }
}

/// User and system CPU time of this process and its waited-for children.
fn controller_cpu() -> Duration {
    let of = |who| {
        // SAFETY: getrusage only fills the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// Rounds of the zero-change rerun and its floor: `FLEET_RERUNS`, or 5.
fn rerun_rounds() -> usize {
    std::env::var("FLEET_RERUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[chopsticks::main]
fn main() {
    let config = common::ssh_config();
    let state = config.parent().unwrap().to_path_buf();
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10, 50];
    }
    // What "copy a file" copies: a local file of the controller.
    let copied = std::fs::read(std::env::current_exe().unwrap())
        .map(|b| b[..64 * 1024].to_vec())
        .unwrap();
    println!("fleet bench (sake's four tasks: package, user, file, copy), one plan call per host");
    for n in sizes {
        let fleet = Fleet::start(n, &state);
        let floor_cold = fleet.ssh_true(false);
        let (cold_first, _, changed) = fleet.tasks(true, &copied);
        assert_eq!(
            changed,
            4 * n,
            "the cold run changes all four on every host"
        );
        fleet.ssh_true(true); // starts the floor's masters
                              // The zero-change rerun is what a baseline tool does all day: its
                              // median over rounds, each beside the floor's.
        let (mut floors, mut floor_cpus, mut reruns, mut rerun_cpus) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rerun_rounds() {
            let cpu = controller_cpu();
            floors.push(fleet.ssh_true(true));
            floor_cpus.push(controller_cpu() - cpu);
            let (took, cpu, changed) = fleet.tasks(true, &copied);
            assert_eq!(changed, 0, "a rerun changes nothing");
            reruns.push(took);
            rerun_cpus.push(cpu);
        }
        let (floor_warm, floor_cpu) = (median(floors), median(floor_cpus));
        let (warm_rerun, warm_cpu) = (median(reruns), median(rerun_cpus));
        let (cold_rerun, _, changed) = fleet.tasks(false, &copied);
        assert_eq!(changed, 0);
        fleet.undo();
        let (warm_first, _, changed) = fleet.tasks(true, &copied);
        assert_eq!(changed, 4 * n);
        let rate = |d: Duration| format!("{:.0} host-ops/s", (4 * n) as f64 / d.as_secs_f64());
        let per_host = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
        println!("N = {n}:");
        println!(
            "  floor: parallel `ssh true` new {}, over masters {} ({:.1} ms of controller CPU per host)",
            secs(floor_cold),
            secs(floor_warm),
            per_host(floor_cpu)
        );
        println!(
            "  cold first run   {} ({})",
            secs(cold_first),
            rate(cold_first)
        );
        println!(
            "  cold rerun       {} ({}), 0 changed",
            secs(cold_rerun),
            rate(cold_rerun)
        );
        println!(
            "  warm first run   {} ({})",
            secs(warm_first),
            rate(warm_first)
        );
        println!(
            "  warm rerun       {} ({}), 0 changed: {:.1} ms wall, {:.1} ms of controller CPU per host; \
             {:.2}x the floor over masters (medians of {} rounds)",
            secs(warm_rerun),
            rate(warm_rerun),
            per_host(warm_rerun),
            per_host(warm_cpu),
            warm_rerun.as_secs_f64() / floor_warm.as_secs_f64(),
            rerun_rounds()
        );
    }
}
