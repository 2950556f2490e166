//! The core suite, run over every kind of tunnel: `local.rs` runs it over a
//! local subprocess, `ssh.rs` over a real sshd, the `hosts` binary into a
//! running container with `docker exec` and through `nsenter`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::{Error, Tunnel};
use chopsticks_tests::*;

/// Where the suite runs.
pub struct Target {
    /// The host name errors carry.
    pub host: &'static str,
    /// Opens a fresh tunnel.
    pub connect: fn() -> Tunnel,
    /// What a lost agent's reason says when the agent was killed by
    /// SIGKILL: a local agent's own status, or how the program that carries
    /// it (ssh, docker, nsenter) reports it.
    pub killed: &'static str,
    /// The host's name and address, when it is not this machine.
    pub elsewhere: Option<(&'static str, &'static str)>,
}

/// No test waits without a bound: a lost reply fails its test with a
/// timeout instead of hanging the whole run.
pub const TEST_CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Target {
    pub fn connect(&self) -> Tunnel {
        let t = (self.connect)();
        t.set_call_timeout(Some(TEST_CALL_TIMEOUT));
        t
    }
}

/// One test of the suite: `body` run against each target of this test
/// binary, as `suite::NAME::TARGET`. The binary names its targets in a
/// `suite_targets!` macro, defined before `mod suite;`, that makes one
/// `#[test]` per target calling the path it is given.
macro_rules! suite_test {
    ($name:ident, |$target:ident| $body:block) => {
        fn $name($target: &Target) $body

        mod $name {
            suite_targets!(super::$name);
        }
    };
}

pub fn inventory() -> Inventory {
    Inventory {
        name: "prod ☃ 東京".into(),
        hosts: vec![
            Host {
                addr: "10.0.0.1".into(),
                role: Role::Web,
            },
            Host {
                addr: "10.0.0.2".into(),
                role: Role::Db(5432),
            },
            Host {
                addr: "10.0.0.3".into(),
                role: Role::Cache("redis".into(), 6379),
            },
            Host {
                addr: "10.0.0.4".into(),
                role: Role::Proxy {
                    upstreams: vec!["a".into(), "b".into()],
                },
            },
        ],
        tags: BTreeMap::from([("env".into(), "prod".into())]),
        weight: 0.25,
    }
}

suite_test!(values_round_trip, |target| {
    let t = target.connect();
    for n in [0, 1, -1, i64::MIN, i64::MAX] {
        assert_eq!(t.call(echo_i64, (n,)).unwrap(), n);
    }
    assert_eq!(t.call(echo_u128, (u128::MAX,)).unwrap(), u128::MAX);
    for x in [0.0, -1.5, f64::MAX, f64::MIN_POSITIVE, std::f64::consts::PI] {
        assert_eq!(t.call(echo_f64, (x,)).unwrap(), x);
    }
    for s in [
        "",
        "plain",
        "ünïcødé ☃ 東京 🦀",
        "line\nbreak\t\"quoted\"\\",
    ] {
        assert_eq!(t.call(echo_string, (s.to_owned(),)).unwrap(), s);
    }
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(t.call(echo_bytes, (bytes.clone(),)).unwrap(), bytes);
    let v = vec!["a".to_owned(), String::new(), "c".to_owned()];
    assert_eq!(t.call(echo_vec, (v.clone(),)).unwrap(), v);
    let m = BTreeMap::from([("x".to_owned(), vec![1, -2]), ("".to_owned(), vec![])]);
    assert_eq!(t.call(echo_map, (m.clone(),)).unwrap(), m);
    assert_eq!(t.call(echo_option, (None,)).unwrap(), None);
    assert_eq!(
        t.call(echo_option, (Some(inventory()),)).unwrap(),
        Some(inventory())
    );
    assert_eq!(t.call(echo_inventory, (inventory(),)).unwrap(), inventory());
    let tuple = (7u8, 'λ', true, "t".to_owned());
    assert_eq!(t.call(echo_tuple, (tuple.clone(),)).unwrap(), tuple);
    assert_eq!(t.call(add, (40, 2)).unwrap(), 42);
    t.call(nothing, ()).unwrap();
});

suite_test!(large_arguments_and_results, |target| {
    let t = target.connect();
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
    assert_eq!(t.call(digest, (data.clone(),)).unwrap(), digest(data));
    let big = t.call(make_bytes, (3 << 20,)).unwrap();
    assert_eq!(big, make_bytes(3 << 20));
});

suite_test!(oversized_arguments_are_refused_before_sending, |target| {
    let t = target.connect();
    let err = t.call(digest, (vec![0u8; 65 << 20],)).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(err.to_string().contains("frame limit"), "{err}");
    assert_eq!(
        t.call(add, (1, 1)).unwrap(),
        2,
        "the tunnel is still usable"
    );
});

suite_test!(errors_arrive_with_their_message_and_chain, |target| {
    let t = target.connect();
    let err = t
        .call(fail_with, ("no such host: db9".into(),))
        .unwrap_err();
    match &err {
        Error::Remote {
            host,
            function,
            error,
        } => {
            assert_eq!(host, target.host);
            assert_eq!(*function, "chopsticks_tests::fixtures::fail_with");
            assert_eq!(error.message(), "no such host: db9");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{}: `chopsticks_tests::fixtures::fail_with` failed: no such host: db9",
            target.host
        )
    );

    let err = t.call(fail_chained, ()).unwrap_err();
    let Error::Remote { error, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        error.chain().collect::<Vec<_>>(),
        ["cannot load the configuration", "disk says no"]
    );
    let source = std::error::Error::source(&err).expect("the remote source");
    assert_eq!(source.to_string(), "disk says no");

    let err = t
        .call(fail_anyhow, ("/nonexistent/x.toml".into(),))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("reading /nonexistent/x.toml: No such file"),
        "{text}"
    );
});

suite_test!(io_results_are_flat, |target| {
    let t = target.connect();
    let hostname: String = t
        .call(read_file, ("/proc/sys/kernel/hostname".into(),))
        .unwrap();
    assert!(!hostname.trim().is_empty());
    let err = t
        .call(read_file, ("/definitely/missing".into(),))
        .unwrap_err();
    assert!(matches!(err, Error::Remote { .. }));
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
});

suite_test!(fallible_and_plain_overrides, |target| {
    let t = target.connect();
    assert_eq!(t.call(checked_half, (8,)).unwrap(), 4);
    let err = t.call(checked_half, (7,)).unwrap_err();
    assert!(err.to_string().ends_with("failed: 7 is odd"), "{err}");
    assert_eq!(t.call(score, (3,)).unwrap(), plain::Result { passed: 3 });
});

suite_test!(a_panic_is_an_error_and_the_agent_lives_on, |target| {
    let t = target.connect();
    let pid = t.agent_pid();
    let err = t.call(explode, ("the floor is lava".into(),)).unwrap_err();
    match &err {
        Error::Panic {
            message, location, ..
        } => {
            assert_eq!(message, "the floor is lava");
            let location = location.as_deref().unwrap();
            assert!(location.starts_with("tests/src/fixtures.rs:"), "{location}");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(t.call(add, (2, 3)).unwrap(), 5);
    assert_eq!(t.agent_pid(), pid);
});

suite_test!(stdout_noise_cannot_corrupt_the_protocol, |target| {
    let t = target.connect();
    for _ in 0..3 {
        let status = t.call(noisy, ()).unwrap();
        assert_eq!(status, "child exit status: 0");
        assert_eq!(
            t.call(echo_string, ("still fine".into(),)).unwrap(),
            "still fine"
        );
    }
});

suite_test!(the_agent_is_clean_inside, |target| {
    let t = target.connect();
    let view = t.call(agent_view, ()).unwrap();
    assert_eq!(view.pid, t.agent_pid());
    assert_ne!(view.pid, std::process::id());
    assert_eq!(
        view.env_agent, None,
        "the agent removes its marker variable"
    );
    assert_eq!(
        view.child_env_agent, "unset",
        "children of remote functions are not agents"
    );
    assert_eq!(view.stdin_read, 0, "fd 0 reads /dev/null");
});

suite_test!(many_threads_share_one_tunnel, |target| {
    let t = Arc::new(target.connect());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let pending: Vec<_> = (0..1000)
                    .map(|i| (i, t.call_async(add, (w * 10_000, i))))
                    .collect();
                for (i, p) in pending {
                    assert_eq!(p.wait().unwrap(), w * 10_000 + i);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
});

suite_test!(slow_calls_overlap_and_do_not_block_fast_ones, |target| {
    let t = target.connect();
    let start = Instant::now();
    // The margins are wide (a loaded machine stalls threads for hundreds of
    // milliseconds): waiting behind one slow call takes 1.5 s, running the
    // four one after another 6 s.
    let slow: Vec<_> = (0..4).map(|_| t.call_async(sleep_ms, (1_500,))).collect();
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
    assert!(
        start.elapsed() < Duration::from_millis(1_200),
        "a fast call waited for slow ones"
    );
    for p in slow {
        assert_eq!(p.wait().unwrap(), 1_500);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(4_000),
        "4 x 1.5 s took {took:?}: not concurrent"
    );
});

suite_test!(wait_timeout_leaves_the_tunnel_usable, |target| {
    let t = target.connect();
    let err = t
        .call_async(sleep_ms, (2_000,))
        .wait_timeout(Duration::from_millis(50))
        .unwrap_err();
    match &err {
        Error::Timeout {
            host,
            function,
            after,
        } => {
            assert_eq!(host, target.host);
            assert_eq!(*function, "chopsticks_tests::fixtures::sleep_ms");
            assert_eq!(*after, Duration::from_millis(50));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
    assert_eq!(
        t.call_async(sleep_ms, (10,))
            .wait_timeout(Duration::from_secs(10))
            .unwrap(),
        10
    );
});

suite_test!(pending_is_a_future, |target| {
    let t = target.connect();
    let a = t.call_async(sleep_ms, (50,));
    let b = t.call_async(add, (20, 22));
    let (a, b) = block_on(async { (a.await, b.await) });
    assert_eq!((a.unwrap(), b.unwrap()), (50, 42));
});

/// A minimal executor: the future must work without any runtime. It fails
/// (rather than polling again) when a wake never comes.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let parked = Instant::now();
        thread::park_timeout(Duration::from_secs(30));
        assert!(
            parked.elapsed() < Duration::from_secs(30),
            "a pending call's future was never woken"
        );
    }
}

suite_test!(awaited_calls_obey_the_call_timeout, |target| {
    let t = target.connect();
    // Long enough that the fast call cannot time out on a loaded machine.
    t.set_call_timeout(Some(Duration::from_millis(800)));
    let start = Instant::now();
    let slow = t.call_async(sleep_ms, (5_000,));
    let fast = t.call_async(add, (1, 2));
    let (slow, fast) = block_on(async { (slow.await, fast.await) });
    let err = slow.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(err.host(), target.host);
    assert_eq!(err.function(), Some("chopsticks_tests::fixtures::sleep_ms"));
    assert!(err.to_string().contains("timed out after 800ms"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fast.unwrap(), 3);
    // The tunnel stays usable; without a timeout an awaited call waits.
    t.set_call_timeout(None);
    let waited = t.call_async(sleep_ms, (500,));
    assert_eq!(block_on(waited).unwrap(), 500);
});

suite_test!(results_json_cannot_express_are_errors, |target| {
    let t = target.connect();
    let err = t.call(unjsonable, ()).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot encode the result"),
        "{err}"
    );
    assert_eq!(t.call(add, (0, 0)).unwrap(), 0);
});

suite_test!(a_killed_agent_fails_waiting_calls_at_once, |target| {
    let t = target.connect();
    let waiting = t.call_async(sleep_ms, (30_000,));
    thread::sleep(Duration::from_millis(50));
    let killed = Instant::now();
    let err = t.call(kill_agent, ()).unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    let err = waiting.wait().unwrap_err();
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "took {:?}",
        killed.elapsed()
    );
    match &err {
        Error::Disconnected {
            function, reason, ..
        } => {
            assert_eq!(*function, Some("chopsticks_tests::fixtures::sleep_ms"));
            assert!(reason.contains(target.killed), "{reason}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let err = t.call(add, (1, 1)).unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
});

suite_test!(an_exiting_agent_reports_status_and_last_stderr, |target| {
    let t = target.connect();
    let err = t.call(exit_agent, (7,)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exited with status 7"), "{text}");
    let last_words = format!("[{}] about to exit with 7", target.host);
    assert!(text.contains(&last_words), "{text}");
});

suite_test!(closing_and_dropping_leave_no_process, |target| {
    let checker = target.connect();
    let gone = |pid: u32| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while checker.call(process_alive, (pid,)).unwrap() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    };
    let t = target.connect();
    let pid = t.agent_pid();
    assert!(checker.call(process_alive, (pid,)).unwrap());
    let waiting = t.call_async(sleep_ms, (30_000,));
    t.close();
    assert!(gone(pid), "close() leaves the agent {pid} running");
    let err = waiting.wait().unwrap_err();
    assert!(err.to_string().contains("the tunnel was closed"), "{err}");
    assert!(matches!(
        t.call(add, (1, 1)),
        Err(Error::Disconnected { .. })
    ));

    let pids: Vec<u32> = (0..4)
        .map(|_| {
            let t = target.connect();
            let _busy = t.call_async(sleep_ms, (30_000,));
            t.agent_pid()
        })
        .collect();
    for pid in pids {
        assert!(gone(pid), "agent {pid} outlived its dropped tunnel");
    }
});

suite_test!(facts_work_over_a_tunnel, |target| {
    let t = target.connect();
    let (hostname, ip) = match target.elsewhere {
        Some((name, ip)) => (name.to_owned(), ip.to_owned()),
        None => (
            chopsticks::facts::hostname().unwrap(),
            chopsticks::facts::ip().unwrap().to_string(),
        ),
    };
    assert_eq!(t.call(chopsticks::facts::hostname, ()).unwrap(), hostname);
    assert_eq!(t.call(chopsticks::facts::ip, ()).unwrap().to_string(), ip);
    // Containers share this machine's kernel.
    assert_eq!(
        t.call(chopsticks::facts::kernel, ()).unwrap(),
        chopsticks::facts::kernel().unwrap()
    );
    assert!(t.call(chopsticks::facts::uptime, ()).unwrap() > Duration::ZERO);
});
