//! Groups, queues, deadlines, log forwarding and scale, against the real
//! hosts of `tests/setup.sh`. A binary of its own, not a module of
//! `hosts/`: it freezes cs-busybox, counts every ssh control socket and
//! connects 200 hosts at once.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chopsticks::{Error, Group, Queue, Tunnel};
use chopsticks_tests::*;

chopsticks::agent_test!();

fn ssh_config() -> PathBuf {
    test_ssh_config()
}

fn group<const N: usize>(hosts: [&str; N]) -> Group {
    let config = ssh_config();
    Group::new(hosts).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(20))
    })
}

fn local_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[test]
fn a_group_call_gives_one_result_per_host_in_order() {
    let g = group(["cs-deb12", "cs-busybox", "cs-local", "cs-noexec"]);
    let results = g.call(chopsticks::facts::hostname, ());
    let hosts: Vec<&str> = results.iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["cs-deb12", "cs-busybox", "cs-local", "cs-noexec"]);
    let names: Vec<String> = results
        .raise_failures()
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let here = chopsticks::facts::hostname().unwrap();
    assert_eq!(
        names,
        ["cs-deb12", "cs-busybox", here.as_str(), "cs-noexec"]
    );
    // Connected once: a second call reuses the tunnels.
    let again = g.call(add, (1, 2));
    assert!(again.is_ok());
    assert_eq!(again.successful().map(|(_, v)| *v).sum::<i64>(), 12);
}

/// Unpauses the container even when the test fails.
struct Paused(&'static str);

impl Paused {
    fn new(container: &'static str) -> Paused {
        let ok = Command::new("docker")
            .args(["pause", container])
            .status()
            .unwrap();
        assert!(ok.success(), "docker pause {container}");
        Paused(container)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["unpause", self.0]).status();
    }
}

#[test]
fn dead_refused_and_frozen_hosts_fail_alone_within_the_deadline() {
    let config = ssh_config();
    let known = config.with_file_name("known_hosts");
    let g = Group::new([
        "cs-deb12",
        "cs-local",
        "cs-refused",
        "172.29.155.99",
        "cs-busybox",
    ])
    .configure(move |b| {
        b.ssh_config(&config)
            .ssh_option(format!("UserKnownHostsFile={}", known.display()))
            .connect_timeout(Duration::from_secs(4))
    })
    .call_timeout(Duration::from_secs(3));
    // Connect first, then freeze one host: its call cannot answer.
    let connected = g.connect();
    assert!(connected.get("cs-busybox").unwrap().is_ok());
    let frozen = Paused::new("chopsticks-test-busybox");
    let start = Instant::now();
    let results = g.call(add, (20, 22));
    let took = start.elapsed();
    drop(frozen);

    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(matches!(results.get("cs-deb12"), Some(Ok(42))));
    assert!(matches!(results.get("cs-local"), Some(Ok(42))));
    assert!(matches!(
        results.get("cs-refused"),
        Some(Err(Error::Connect { .. }))
    ));
    assert!(matches!(
        results.get("172.29.155.99"),
        Some(Err(Error::Connect { .. }))
    ));
    match results.get("cs-busybox") {
        Some(Err(Error::Timeout { host, function, .. })) => {
            assert_eq!(host, "cs-busybox");
            assert_eq!(*function, "chopsticks_tests::fixtures::add");
        }
        other => panic!("the frozen host should time out: {other:?}"),
    }
    let error = results.raise_failures().unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("3 of 5 hosts failed (cs-refused, 172.29.155.99, cs-busybox)"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains("timed out after 3s"), "{text}");
    // Thawed, the same tunnel answers again.
    assert!(matches!(g.call(add, (1, 1)).get("cs-busybox"), Some(Ok(2))));
}

#[test]
fn set_algebra_and_filter() {
    let a = group(["cs-deb12", "cs-noexec", "cs-local"]);
    let b = group(["cs-local", "cs-busybox"]);
    let names = |g: &Group| g.hosts().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        names(&(&a | &b)),
        ["cs-deb12", "cs-noexec", "cs-local", "cs-busybox"]
    );
    assert_eq!(names(&(&a & &b)), ["cs-local"]);
    assert_eq!(names(&(&a - &b)), ["cs-deb12", "cs-noexec"]);
    assert_eq!(names(&(&a ^ &b)), ["cs-deb12", "cs-noexec", "cs-busybox"]);

    let roots = a.filter(is_root, ());
    let mut expected = vec!["cs-deb12"];
    if local_uid() == 0 {
        expected.push("cs-local");
    }
    assert_eq!(roots.hosts().collect::<Vec<_>>(), expected);
    // A filtered group shares the connections of the group it came from.
    assert!(roots.call(add, (2, 2)).is_ok());
}

#[test]
fn unreachable_hosts_can_be_dropped_for_the_rest_of_a_run() {
    let g = group(["cs-deb12", "cs-refused", "cs-busybox"]);
    let connected = g.connect();
    assert_eq!(connected.failures().count(), 1);
    let live = g.without_failures(&connected);
    assert_eq!(live.hosts().collect::<Vec<_>>(), ["cs-deb12", "cs-busybox"]);
    let sums = live.call(add, (2, 3));
    assert!(sums.is_ok(), "{:?}", sums.failures().next());
    // The live group uses the connections the first one made.
    let before = g.tunnels();
    let after = live.tunnels();
    for host in ["cs-deb12", "cs-busybox"] {
        let (a, b) = (before.get(host).unwrap(), after.get(host).unwrap());
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
    }
    // Failures of a call drop hosts too; a group without failures is whole.
    assert_eq!(g.without_failures(&sums).len(), 3);
}

#[test]
fn a_queue_keeps_each_hosts_order_while_hosts_run_independently() {
    let slow = Tunnel::local().unwrap();
    let fast = Tunnel::local().unwrap();
    let finished: Arc<Mutex<Vec<&str>>> = Arc::default();
    let mut queue = Queue::new();
    queue.call(&slow, sleep_ms, (500,));
    for i in 1..=5 {
        queue.call(&slow, journal_push, (i,));
        queue.call(&fast, journal_push, (i * 10,));
    }
    let slow_journal = queue.call(&slow, journal_take, ());
    let fast_journal = queue.call(&fast, journal_take, ());
    let log = Arc::clone(&finished);
    slow_journal.then(move |_| log.lock().unwrap().push("slow"));
    let log = Arc::clone(&finished);
    fast_journal.then(move |_| log.lock().unwrap().push("fast"));
    let failing = queue.call(&fast, fail_with, ("queued failure".into(),));
    queue.call(&fast, journal_push, (99,));

    let err = queue.run().unwrap_err();
    assert_eq!(slow_journal.result().unwrap(), [1, 2, 3, 4, 5]);
    assert_eq!(fast_journal.result().unwrap(), [10, 20, 30, 40, 50]);
    assert_eq!(
        *finished.lock().unwrap(),
        ["fast", "slow"],
        "the fast host did not wait"
    );
    assert!(failing.result().is_err());
    assert_eq!(err.failures().len(), 1);
    assert!(err.to_string().contains("queued failure"), "{err}");
    // The call after the failure ran.
    assert_eq!(fast.call(journal_take, ()).unwrap(), [99]);
}

#[test]
fn a_panicking_callback_fails_its_call_and_the_queue_goes_on() {
    let t = Tunnel::local().unwrap();
    let mut queue = Queue::new();
    let first = queue.call(&t, add, (1, 2));
    first.then(|_| panic!("callback boom"));
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let log = Arc::clone(&seen);
    first.then(move |sum| log.lock().unwrap().push(*sum.as_ref().unwrap()));
    let second = queue.call(&t, add, (3, 4));
    let err = queue.run().unwrap_err();
    // The call itself succeeded; its other callback and the next call ran.
    assert_eq!(first.result().unwrap(), 3);
    assert_eq!(*seen.lock().unwrap(), [3]);
    assert_eq!(second.result().unwrap(), 7);
    assert_eq!(err.failures().len(), 1);
    let (host, error) = &err.failures()[0];
    assert_eq!(host, "localhost");
    assert!(matches!(error, Error::Controller { .. }), "{error:?}");
    assert_eq!(error.function(), Some("chopsticks_tests::fixtures::add"));
    assert!(error.to_string().contains("callback boom"), "{error}");
}

#[test]
fn a_queue_obeys_its_groups_call_timeout() {
    let g = Group::from(Tunnel::local().unwrap()).call_timeout(Duration::from_millis(300));
    let mut queue = Queue::new();
    let slow = queue.call(&g, sleep_ms, (10_000,));
    let after = queue.call(&g, add, (1, 2));
    let start = Instant::now();
    let err = queue.run().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let (_, slow) = slow.into_iter().next().unwrap();
    assert!(
        matches!(slow.result(), Err(Error::Timeout { .. })),
        "the group's call timeout bounds a queued call"
    );
    assert_eq!(after.into_iter().next().unwrap().1.result().unwrap(), 3);
    assert_eq!(err.failures().len(), 1);
}

#[test]
fn dropping_a_group_of_frozen_hosts_takes_one_close_bound() {
    let config = ssh_config();
    let g = Group::new(["cs-many-1", "cs-many-2", "cs-many-3", "cs-many-4"])
        .progress(false)
        .configure(|b| b.ssh_config(&config));
    // The loopback sshd's agents are processes of this machine: freeze them.
    let pids: Vec<i32> = g
        .tunnels()
        .raise_failures()
        .unwrap()
        .iter()
        .map(|(_, t)| t.agent_pid() as i32)
        .collect();
    for pid in &pids {
        // SAFETY: signals to the agents this test started.
        assert_eq!(unsafe { libc::kill(*pid, libc::SIGSTOP) }, 0);
    }
    let start = Instant::now();
    drop(g);
    let took = start.elapsed();
    for pid in &pids {
        // SAFETY: as above; thawed, each sees its input closed and exits.
        unsafe { libc::kill(*pid, libc::SIGCONT) };
    }
    // Each gets up to 2 s to exit before it is stopped: one after another
    // that would be 8 s.
    assert!(took < Duration::from_millis(3500), "{took:?}");
}

#[test]
fn a_queue_dropped_before_running_says_so() {
    let t = Tunnel::local().unwrap();
    let mut queue = Queue::new();
    let never = queue.call(&t, add, (1, 2));
    drop(queue);
    let error = never.result().unwrap_err();
    assert!(matches!(error, Error::Controller { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "localhost: `chopsticks_tests::fixtures::add`: queued, but the queue was dropped before `run`"
    );
}

#[test]
fn a_queue_runs_on_group_hosts_and_reports_unreachable_ones() {
    let g = group(["cs-deb12", "cs-refused", "cs-busybox"]);
    let mut queue = Queue::new();
    let pushes = queue.call(&g, journal_push, (7,));
    let takes = queue.call(&g, journal_take, ());
    let err = queue.run().unwrap_err();
    assert_eq!(pushes.len(), 3);
    let by_host: Vec<(String, Option<Vec<u32>>)> = takes
        .into_iter()
        .map(|(host, q)| (host, q.result().ok()))
        .collect();
    assert_eq!(
        by_host,
        [
            ("cs-deb12".to_owned(), Some(vec![7])),
            ("cs-refused".to_owned(), None),
            ("cs-busybox".to_owned(), Some(vec![7])),
        ]
    );
    let hosts: Vec<&str> = err.failures().iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        hosts,
        ["cs-refused", "cs-refused"],
        "both of its calls failed"
    );
}

#[test]
fn call_timeouts_leave_tunnels_usable() {
    let t = Tunnel::builder("cs-deb12")
        .ssh_config(ssh_config())
        .call_timeout(Duration::from_millis(300))
        .connect()
        .unwrap();
    assert_eq!(t.call_timeout(), Some(Duration::from_millis(300)));
    let err = t.call(sleep_ms, (3_000,)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("cs-deb12: `chopsticks_tests::fixtures::sleep_ms` timed out"));
    assert_eq!(t.call(add, (3, 4)).unwrap(), 7);
    // A per-call bound overrides the tunnel's.
    assert_eq!(
        t.call_async(sleep_ms, (500,))
            .wait_timeout(Duration::from_secs(5))
            .unwrap(),
        500
    );
    t.set_call_timeout(None);
    assert_eq!(t.call(sleep_ms, (400,)).unwrap(), 400);

    let local = Tunnel::local().unwrap();
    local.set_call_timeout(Some(Duration::from_millis(100)));
    assert!(matches!(
        local.call(sleep_ms, (2_000,)),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(local.call(add, (1, 1)).unwrap(), 2);
}

/// Records what the `log` crate is given, for the log forwarding test.
struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        capture
    })
}

#[test]
fn log_records_of_remote_functions_arrive_with_their_host() {
    let capture = capture();
    for t in [
        Tunnel::local().unwrap(),
        Tunnel::builder("cs-deb12")
            .ssh_config(ssh_config())
            .connect()
            .unwrap(),
    ] {
        let message = format!("hello from {}", t.host());
        t.call(log_info, (message.clone(),)).unwrap();
        let expected = format!("[{}] {message}", t.host());
        let records = capture.0.lock().unwrap();
        assert!(
            records
                .iter()
                .any(|(level, target, text)| *level == log::Level::Info
                    && target == "chopsticks_tests::remote"
                    && *text == expected),
            "{expected:?} not in {records:?}"
        );
    }
}

#[test]
fn output_is_plain_when_stderr_is_not_a_terminal() {
    let out = Command::new(env!("CARGO_BIN_EXE_group_demo"))
        .arg(ssh_config())
        .args(["cs-local", "cs-deb12", "cs-busybox"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "cs-local: ok\ncs-deb12: ok\ncs-busybox: ok\n");
    for host in ["cs-local", "cs-deb12", "cs-busybox"] {
        assert!(stderr.contains(&format!("[{host}] hello\n")), "{stderr:?}");
    }
    assert!(
        !stderr.contains('\x1b'),
        "colour or progress on a pipe: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r'),
        "a progress line on a pipe: {stderr:?}"
    );
}

#[test]
fn two_hundred_hosts_in_one_group() {
    let mut hosts: Vec<String> = (1..=195).map(|i| format!("cs-many-{i}")).collect();
    hosts.extend(
        [
            "cs-deb12",
            "cs-busybox",
            "cs-noexec",
            "cs-rohome",
            "cs-deb12-deploy",
        ]
        .map(String::from),
    );
    let config = ssh_config();
    let g = Group::new(hosts).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(60))
    });
    assert_eq!(g.len(), 200);
    let results = g.call(add, (40, 2));
    let failures: Vec<String> = results
        .failures()
        .map(|(h, e)| format!("{h}: {e}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(results.successful().filter(|(_, v)| **v == 42).count(), 200);
    // Every agent is its own process.
    let pids = g.call(agent_view, ());
    let mut seen: Vec<(String, u32)> = pids
        .successful()
        .map(|(h, v)| (h.to_owned(), v.pid))
        .collect();
    assert_eq!(seen.len(), 200);
    seen.sort_by_key(|(_, pid)| *pid);
    let local: Vec<_> = seen
        .iter()
        .filter(|(h, _)| h.starts_with("cs-many-"))
        .collect();
    let mut unique: Vec<u32> = local.iter().map(|(_, p)| *p).collect();
    unique.dedup();
    assert_eq!(unique.len(), 195, "each loopback name has its own agent");
}

#[test]
fn connection_reuse_shares_one_private_master() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = ssh_control_dir();
    let sockets = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let builder = || {
        Tunnel::builder("cs-deb12-deploy")
            .ssh_config(ssh_config())
            .control_persist(Duration::from_secs(30))
    };
    // A master an earlier run left for the host goes first; other
    // programs' masters may be there too.
    let master = |verb: &str| {
        Command::new("ssh")
            .arg("-F")
            .arg(ssh_config())
            .arg("-o")
            .arg(format!("ControlPath={}/%C", dir.display()))
            .args(["-O", verb, "cs-deb12-deploy"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    let asked = Instant::now();
    while master("check") && asked.elapsed() < Duration::from_secs(10) {
        master("exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let others = sockets();
    let sockets = || -> Vec<PathBuf> {
        let mut mine = sockets();
        mine.retain(|s| !others.contains(s));
        mine
    };
    let first = builder().connect().unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the socket directory is private");
    let masters = sockets();
    assert_eq!(masters.len(), 1, "one master for the host: {masters:?}");
    let second = builder().connect().unwrap();
    drop(first);
    assert_eq!(
        second.call(add, (1, 2)).unwrap(),
        3,
        "the second session survives the first"
    );
    drop(second);
    let third = builder().connect().unwrap();
    assert_eq!(third.call(add, (2, 2)).unwrap(), 4);
    assert_eq!(sockets(), masters, "the master persisted and was reused");
    drop(third);
    // Stop the master this test started.
    for socket in masters {
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-O", "exit", "cs-deb12-deploy"])
            .output();
    }
    // The master removes its socket as it exits, just after answering.
    let asked = Instant::now();
    while !sockets().is_empty() && asked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sockets(), Vec::<PathBuf>::new(), "the master is gone");
}

#[test]
fn a_tunnel_is_a_group_of_one() {
    let g = Group::from(Tunnel::local().unwrap());
    assert_eq!(g.hosts().collect::<Vec<_>>(), ["localhost"]);
    let results = g.call(add, (2, 3));
    assert!(matches!(results.get("localhost"), Some(Ok(5))));
    let mixed = Group::new([
        chopsticks::Host::from(Tunnel::local().unwrap()),
        chopsticks::Host::from(Tunnel::builder("cs-deb12").ssh_config(ssh_config())),
    ]);
    assert_eq!(mixed.call(add, (1, 1)).raise_failures().unwrap().len(), 2);
}

/// Hosts reached through a wrapper command that counts how many of them
/// are connecting (itself included) once a second one is, or after 5 s
/// (so two connects a loaded machine starts apart still meet, and the
/// last alone does not wait long), holds each connect 300 ms more, then
/// starts the bootstrap on this machine. Returns the hosts and the file
/// of counts.
fn counted_hosts(name: &str, hosts: usize) -> (Vec<chopsticks::TunnelBuilder>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("chopsticks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("live")).unwrap();
    let wrapper = dir.join("connect");
    let script = format!(
        "#!/bin/sh\nd='{}'\n: >\"$d/live/$$\"\ni=0\n\
         while [ $(ls \"$d/live\" | wc -l) -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\n\
         ls \"$d/live\" | wc -l >>\"$d/counts\"\n\
         sleep 0.3\nrm -f \"$d/live/$$\"\nexec \"$@\"\n",
        dir.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&wrapper, executable).unwrap();
    let builders = (0..hosts)
        .map(|i| {
            chopsticks::TunnelBuilder::command(format!("counted{i}"), [&wrapper])
                .connect_timeout(Duration::from_secs(60))
        })
        .collect();
    (builders, dir.join("counts"))
}

/// The most hosts that were connecting at once.
fn most_at_once(counts: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(counts).unwrap();
    let counts: Vec<usize> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 6, "every host connected once: {text}");
    counts.into_iter().max().unwrap()
}

#[test]
fn a_group_connects_at_most_forks_hosts_at_once() {
    let (hosts, counts) = counted_hosts("group-forks", 6);
    let g = Group::new(hosts).forks(2);
    let sums = g.call(add, (1, 2)).raise_failures().unwrap();
    assert_eq!(sums.len(), 6);
    assert_eq!(most_at_once(&counts), 2, "forks(2) on 6 hosts");
    let _ = std::fs::remove_dir_all(counts.parent().unwrap());
}

#[test]
fn a_queue_runs_at_most_forks_hosts_at_once() {
    let (hosts, counts) = counted_hosts("queue-forks", 6);
    let g = Group::new(hosts);
    let mut queue = Queue::new().forks(2);
    let sums = queue.call(&g, add, (1, 2));
    queue.run().unwrap();
    for (host, sum) in sums {
        assert_eq!(sum.result().unwrap(), 3, "{host}");
    }
    assert_eq!(most_at_once(&counts), 2, "forks(2) on 6 hosts");
    let _ = std::fs::remove_dir_all(counts.parent().unwrap());
}
