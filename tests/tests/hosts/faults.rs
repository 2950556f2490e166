//! The fault matrix, against `cs-fault`, a container these tests may break:
//! connection reuse across processes, ssh or the agent killed or frozen
//! mid-call, the network cut mid-call and restored, the container restarted.
//! Each test says what the user sees and within what bound. They run one at
//! a time: they share the container.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::{Error, Group};
use chopsticks_tests::{add, sleep_ms, test_container, test_env, test_host, test_ssh_config};

const HOST: &str = "cs-fault";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn docker(args: &[&str]) {
    let out = run("docker", args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` on `cs-fault` through a plain ssh of its own.
fn remote_sh(script: &str) -> String {
    let config = test_ssh_config();
    let out = run("ssh", &["-F", config.to_str().unwrap(), HOST, script]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn remote_alive(pid: u32) -> bool {
    remote_sh(&format!(
        "kill -0 {pid} 2>/dev/null && echo alive || echo gone"
    ))
    .contains("alive")
}

/// Waits up to `bound` for `done`.
fn eventually(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// The process IDs of this process's `ssh` children for `host`.
fn ssh_children(host: &str) -> Vec<u32> {
    chopsticks_tests::children()
        .into_iter()
        .filter(|c| c.is_ssh_to(host))
        .map(|c| c.pid)
        .collect()
}

/// Two runs of a tool with `--control-persist` share one master: the
/// second reuses the one the first left (same master process), and a master
/// killed with its socket left behind is replaced, not an error.
#[test]
fn a_second_run_reuses_the_master_the_first_left_and_a_dead_one_is_replaced() {
    let _one = serial();
    let runtime = PathBuf::from(format!("/tmp/cs-persist-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    let config = test_ssh_config();
    let tool = || {
        let out = Command::new(env!("CARGO_BIN_EXE_facts"))
            .args(["-F", config.to_str().unwrap(), "-H", HOST])
            .arg("--control-persist=60")
            .env("XDG_RUNTIME_DIR", &runtime)
            // No run journal in the test runner's home.
            .env("CHOPSTICKS_NO_JOURNAL", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "facts: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let control_path = runtime.join("chopsticks-ssh/%C");
    let master = || {
        let out = Command::new("ssh")
            .args(["-F", config.to_str().unwrap()])
            .arg("-o")
            .arg(format!("ControlPath={}", control_path.display()))
            .args(["-O", "check", HOST])
            .output()
            .unwrap();
        // "Master running (pid=N)" on stderr.
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.split("pid=")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.parse::<i32>().ok())
    };
    tool();
    let first = master().expect("the first run left a master");
    tool();
    assert_eq!(master(), Some(first), "the second run used the same master");
    // Kill the master: its socket stays behind, stale.
    // SAFETY: a plain system call on a process this test started.
    assert_eq!(unsafe { libc::kill(first, libc::SIGKILL) }, 0);
    assert!(eventually(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{first}"
    ))
    .exists()));
    // (Beside it: the record of where the master listens, and the note of
    // the host's login shell.)
    let sockets = std::fs::read_dir(runtime.join("chopsticks-ssh"))
        .unwrap()
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.file_type().is_ok_and(|t| t.is_socket())
        })
        .count();
    assert_eq!(sockets, 1, "the dead master's socket is still there");
    assert_eq!(master(), None);
    tool();
    let second = master().expect("a new master");
    assert_ne!(second, first);
    // SAFETY: as above; the new master was started by this test's tool.
    unsafe { libc::kill(second, libc::SIGTERM) };
    let _ = std::fs::remove_dir_all(&runtime);
}

/// ssh killed with a call in flight: the call fails at once as a lost
/// agent, naming host and function; the agent on the host exits; a new
/// tunnel works.
#[test]
fn ssh_killed_mid_call_fails_the_call_at_once_and_the_agent_exits() {
    let _one = serial();
    let t = test_host(HOST).connect().unwrap();
    let agent = t.agent_pid();
    let call = t.call_async(sleep_ms, (30_000,));
    let ssh = ssh_children(HOST);
    assert_eq!(ssh.len(), 1, "one ssh for the tunnel: {ssh:?}");
    thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    // SAFETY: a plain system call on this process's own child.
    assert_eq!(unsafe { libc::kill(ssh[0] as i32, libc::SIGKILL) }, 0);
    let err = call.wait().unwrap_err();
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cs-fault: lost the agent during `chopsticks_tests::fixtures::sleep_ms`"),
        "{err}"
    );
    assert!(!t.is_connected());
    assert!(
        eventually(Duration::from_secs(15), || !remote_alive(agent)),
        "the agent {agent} outlived its ssh"
    );
    let again = test_host(HOST).connect().unwrap();
    assert_eq!(again.call(add, (1, 2)).unwrap(), 3);
}

/// The agent killed on the host mid-call: the call fails at once; frozen
/// (SIGSTOP) mid-call: the call times out at its bound and closing takes no
/// longer than the close bound.
#[test]
fn an_agent_killed_or_frozen_on_the_host_fails_the_call_within_its_bound() {
    let _one = serial();
    let t = test_host(HOST).connect().unwrap();
    let call = t.call_async(sleep_ms, (30_000,));
    thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    remote_sh(&format!("kill -KILL {}", t.agent_pid()));
    let err = call.wait().unwrap_err();
    assert!(killed.elapsed() < Duration::from_secs(3), "{err}");
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("lost the agent during"), "{err}");

    let t = test_host(HOST)
        .call_timeout(Duration::from_secs(2))
        .connect()
        .unwrap();
    let agent = t.agent_pid();
    let call = t.call_async(sleep_ms, (500,));
    remote_sh(&format!("kill -STOP {agent}"));
    let stopped = Instant::now();
    let err = call.wait().unwrap_err();
    let took = stopped.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let closing = Instant::now();
    drop(t);
    assert!(closing.elapsed() < Duration::from_secs(8));
    // Let it go: it sees its input ended and exits.
    remote_sh(&format!("kill -CONT {agent}"));
    assert!(
        eventually(Duration::from_secs(15), || !remote_alive(agent)),
        "the agent {agent} outlived its tunnel"
    );
}

fn network() -> (String, String, String) {
    let container = test_container("fault");
    let net = test_env("CHOPSTICKS_TEST_NETWORK");
    let ip = test_env("CHOPSTICKS_TEST_FAULT_IP");
    (container, net, ip)
}

/// Puts the container back on its network, whatever the test did.
struct Reconnect;

impl Drop for Reconnect {
    fn drop(&mut self) {
        let (container, net, ip) = network();
        let _ = run(
            "docker",
            &["network", "connect", "--ip", &ip, &net, &container],
        );
    }
}

/// The network cut mid-call: the call fails at its deadline, the group's
/// other host is unaffected; once the network is back, the next call
/// succeeds (over the same connection, or a new one).
#[test]
fn a_network_cut_mid_call_fails_at_the_deadline_and_the_host_comes_back() {
    let _one = serial();
    let (container, net, ip) = network();
    let config = test_ssh_config();
    let group = Group::new([HOST, "cs-deb12"]).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(20))
            .call_timeout(Duration::from_secs(3))
    });
    let warm = group.call(add, (1, 1));
    assert!(warm.iter().all(|(_, r)| r.is_ok()), "{warm:?}");
    let cut = {
        let (container, net) = (container.clone(), net.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            docker(&["network", "disconnect", "--force", &net, &container]);
            Reconnect
        })
    };
    let started = Instant::now();
    let results = group.call(sleep_ms, (1500,));
    let took = started.elapsed();
    let reconnect = cut.join().unwrap();
    let by_host: Vec<_> = results.iter().collect();
    assert!(
        matches!(by_host[0].1, Err(Error::Timeout { .. })),
        "{:?}",
        by_host[0]
    );
    assert_eq!(by_host[1].1.as_ref().ok(), Some(&1500), "{:?}", by_host[1]);
    assert!(took < Duration::from_secs(5), "the group took {took:?}");
    docker(&["network", "connect", "--ip", &ip, &net, &container]);
    std::mem::forget(reconnect);
    // Back: within ssh's keepalive bound, a call succeeds.
    let back = Instant::now();
    let mut last = None;
    let ok = eventually(Duration::from_secs(60), || {
        let results = group.call(add, (2, 2));
        let ok = results
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(|v| *v == 4));
        last = Some(format!("{results:?}"));
        ok
    });
    assert!(ok, "after {:?}: {last:?}", back.elapsed());
}

/// The container restarted under an open tunnel: the group notices the
/// agent is gone (sshd's shutdown closed the connection) and reconnects;
/// while sshd is not back the call is a connect error naming the host, and
/// once it is, a call succeeds.
#[test]
fn a_restarted_host_is_reconnected_once_sshd_is_back() {
    let _one = serial();
    let (container, _, _) = network();
    let config = test_ssh_config();
    let group = Group::new([HOST]).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(20))
            .call_timeout(Duration::from_secs(20))
    });
    assert!(group.call(add, (1, 1)).iter().all(|(_, r)| r.is_ok()));
    docker(&["restart", "--time", "1", &container]);
    let started = Instant::now();
    let results = group.call(add, (1, 2));
    let (_, first) = results.iter().next().unwrap();
    assert!(started.elapsed() < Duration::from_secs(25));
    if let Err(e) = first {
        let expected = matches!(e, Error::Disconnected { .. }) || e.is_unreachable();
        assert!(expected && e.host() == HOST, "{e:?}");
    }
    let mut last = None;
    let ok = eventually(Duration::from_secs(30), || {
        let results = group.call(add, (1, 2));
        let (_, r) = results.iter().next().unwrap();
        last = Some(format!("{r:?}"));
        r.as_ref().is_ok_and(|v| *v == 3)
    });
    assert!(ok, "{last:?}");
}
