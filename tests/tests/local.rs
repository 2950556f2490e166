//! The core suite over a real local tunnel: this test binary re-executed as
//! its own agent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::{Error, Tunnel};
use chopsticks_tests::*;

chopsticks::agent_test!();

fn tunnel() -> Tunnel {
    Tunnel::local().expect("start a local agent")
}

fn inventory() -> Inventory {
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

#[test]
fn values_round_trip() {
    let t = tunnel();
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
}

#[test]
fn large_arguments_and_results() {
    let t = tunnel();
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
    assert_eq!(t.call(digest, (data.clone(),)).unwrap(), digest(data));
    let big = t.call(make_bytes, (3 << 20,)).unwrap();
    assert_eq!(big, make_bytes(3 << 20));
}

#[test]
fn oversized_arguments_are_refused_before_sending() {
    let t = tunnel();
    let err = t.call(digest, (vec![0u8; 65 << 20],)).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert!(err.to_string().contains("frame limit"), "{err}");
    assert_eq!(
        t.call(add, (1, 1)).unwrap(),
        2,
        "the tunnel is still usable"
    );
}

#[test]
fn errors_arrive_with_their_message_and_chain() {
    let t = tunnel();
    let err = t
        .call(fail_with, ("no such host: db9".into(),))
        .unwrap_err();
    match &err {
        Error::Remote {
            host,
            function,
            error,
        } => {
            assert_eq!(host, "localhost");
            assert_eq!(*function, "chopsticks_tests::fail_with");
            assert_eq!(error.message(), "no such host: db9");
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "localhost: `chopsticks_tests::fail_with` failed: no such host: db9"
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
}

#[test]
fn io_results_are_flat() {
    let t = tunnel();
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
}

#[test]
fn fallible_and_plain_overrides() {
    let t = tunnel();
    assert_eq!(t.call(checked_half, (8,)).unwrap(), 4);
    let err = t.call(checked_half, (7,)).unwrap_err();
    assert!(err.to_string().ends_with("failed: 7 is odd"), "{err}");
    assert_eq!(t.call(score, (3,)).unwrap(), plain::Result { passed: 3 });
}

#[test]
fn a_panic_is_an_error_and_the_agent_lives_on() {
    let t = tunnel();
    let pid = t.agent_pid();
    let err = t.call(explode, ("the floor is lava".into(),)).unwrap_err();
    match &err {
        Error::Panic {
            message, location, ..
        } => {
            assert_eq!(message, "the floor is lava");
            let location = location.as_deref().unwrap();
            assert!(location.starts_with("tests/src/lib.rs:"), "{location}");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(t.call(add, (2, 3)).unwrap(), 5);
    assert_eq!(t.agent_pid(), pid);
}

#[test]
fn stdout_noise_cannot_corrupt_the_protocol() {
    let t = tunnel();
    for _ in 0..3 {
        let status = t.call(noisy, ()).unwrap();
        assert_eq!(status, "child exit status: 0");
        assert_eq!(
            t.call(echo_string, ("still fine".into(),)).unwrap(),
            "still fine"
        );
    }
}

#[test]
fn the_agent_is_clean_inside() {
    let t = tunnel();
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
}

#[test]
fn many_threads_share_one_tunnel() {
    let t = Arc::new(tunnel());
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
}

#[test]
fn slow_calls_overlap_and_do_not_block_fast_ones() {
    let t = tunnel();
    let start = Instant::now();
    let slow: Vec<_> = (0..4).map(|_| t.call_async(sleep_ms, (600,))).collect();
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "a fast call waited for slow ones"
    );
    for p in slow {
        assert_eq!(p.wait().unwrap(), 600);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1800),
        "4 x 600 ms took {took:?}: not concurrent"
    );
}

#[test]
fn wait_timeout_leaves_the_tunnel_usable() {
    let t = tunnel();
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
            assert_eq!(host, "localhost");
            assert_eq!(*function, "chopsticks_tests::sleep_ms");
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
}

#[test]
fn pending_is_a_future() {
    let t = tunnel();
    let a = t.call_async(sleep_ms, (50,));
    let b = t.call_async(add, (20, 22));
    let (a, b) = block_on(async { (a.await, b.await) });
    assert_eq!((a.unwrap(), b.unwrap()), (50, 42));
}

/// A minimal executor: the future must work without any runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
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
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => thread::park_timeout(Duration::from_secs(1)),
        }
    }
}

#[test]
fn results_json_cannot_express_are_errors() {
    let t = tunnel();
    let err = t.call(unjsonable, ()).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot encode the result"),
        "{err}"
    );
    assert_eq!(t.call(add, (0, 0)).unwrap(), 0);
}

#[test]
fn a_killed_agent_fails_waiting_calls_at_once() {
    let t = tunnel();
    let waiting = t.call_async(sleep_ms, (30_000,));
    thread::sleep(Duration::from_millis(50));
    let killed = Instant::now();
    // SAFETY: sending SIGKILL to our own child process.
    assert_eq!(
        unsafe { libc::kill(t.agent_pid() as i32, libc::SIGKILL) },
        0
    );
    let err = waiting.wait().unwrap_err();
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "took {:?}",
        killed.elapsed()
    );
    match &err {
        Error::Disconnected {
            function, reason, ..
        } => {
            assert_eq!(*function, Some("chopsticks_tests::sleep_ms"));
            assert!(reason.contains("signal 9"), "{reason}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let err = t.call(add, (1, 1)).unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
}

#[test]
fn an_exiting_agent_reports_status_and_last_stderr() {
    let t = tunnel();
    let err = t.call(exit_agent, (7,)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exited with status 7"), "{text}");
    assert!(text.contains("[localhost] about to exit with 7"), "{text}");
}

#[test]
fn closing_and_dropping_leave_no_process() {
    let t = tunnel();
    let pid = t.agent_pid();
    assert!(alive(pid));
    let waiting = t.call_async(sleep_ms, (30_000,));
    t.close();
    assert!(!alive(pid), "close() reaps the agent");
    let err = waiting.wait().unwrap_err();
    assert!(err.to_string().contains("the tunnel was closed"), "{err}");
    assert!(matches!(
        t.call(add, (1, 1)),
        Err(Error::Disconnected { .. })
    ));

    let pids: Vec<u32> = (0..4)
        .map(|_| {
            let t = tunnel();
            let _busy = t.call_async(sleep_ms, (30_000,));
            t.agent_pid()
        })
        .collect();
    for pid in pids {
        assert!(!alive(pid), "agent {pid} outlived its dropped tunnel");
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn facts_work_over_a_tunnel() {
    let t = tunnel();
    assert_eq!(
        t.call(chopsticks::facts::hostname, ()).unwrap(),
        chopsticks::facts::hostname().unwrap()
    );
    assert_eq!(
        t.call(chopsticks::facts::ip, ()).unwrap(),
        chopsticks::facts::ip().unwrap()
    );
    assert_eq!(
        t.call(chopsticks::facts::kernel, ()).unwrap(),
        chopsticks::facts::kernel().unwrap()
    );
    assert!(t.call(chopsticks::facts::uptime, ()).unwrap() > Duration::ZERO);
}

#[test]
fn the_registry_holds_every_linked_function() {
    let registry = chopsticks::agent::Registry::get().unwrap();
    // this library's functions, plus the built-in facts
    assert!(
        registry.len() >= FUNCTIONS + 5,
        "{} registered",
        registry.len()
    );
    assert!(registry
        .iter()
        .any(|r| r.name() == "chopsticks_tests::echo_inventory"));
    assert!(registry.iter().any(|r| r.name() == "chopsticks::facts::ip"));
}

#[test]
fn a_fixture_binary_serves_the_same_functions() {
    let t = Tunnel::local_binary(env!("CARGO_BIN_EXE_fixture")).unwrap();
    assert_eq!(t.call(echo_inventory, (inventory(),)).unwrap(), inventory());
    assert_ne!(t.agent_pid(), Tunnel::local().unwrap().agent_pid());
}

#[test]
fn a_stale_agent_is_named_as_such() {
    let t = Tunnel::local_binary(env!("CARGO_BIN_EXE_stale")).unwrap();
    assert!(!t.call(chopsticks::facts::kernel, ()).unwrap().is_empty());
    let err = t.call(add, (1, 2)).unwrap_err();
    assert!(matches!(err, Error::UnknownFunction { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`chopsticks_tests::add`") && text.contains("rebuild"),
        "{text}"
    );
}

#[test]
fn a_binary_that_never_enters_agent_mode_fails_cleanly() {
    let start = Instant::now();
    let err = Tunnel::local_binary(env!("CARGO_BIN_EXE_no_entry")).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    let text = err.to_string();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(text.contains("#[chopsticks::main]"), "{text}");
    // It did not start itself again: it refused, said why, and exited 3.
    assert!(text.contains("exited with status 3"), "{text}");
    assert!(text.contains("never entered agent mode"), "{text}");
}

#[test]
fn a_missing_binary_is_a_spawn_error() {
    let err = Tunnel::local_binary("/nonexistent/agent").unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/agent"), "{err}");
}
