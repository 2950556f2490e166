//! The core suite over a real local tunnel (this test binary re-executed as
//! its own agent), and what only local tunnels do.

use std::time::{Duration, Instant};

use chopsticks::{Error, Pending, Tunnel};
use chopsticks_tests::*;

chopsticks::agent_test!();

/// Where this binary runs the core suite: each test there runs as
/// `suite::TEST::local`.
macro_rules! suite_targets {
    ($test:path) => {
        #[test]
        fn local() {
            $test(&crate::LOCAL)
        }
    };
}

mod suite;

const LOCAL: suite::Target = suite::Target {
    host: "localhost",
    connect: || Tunnel::local().expect("start a local agent"),
    killed: "signal 9",
    elsewhere: None,
};

#[test]
fn the_registry_holds_every_linked_function() {
    let registry = chopsticks::agent::Registry::get().unwrap();
    let mut registered: Vec<&str> = registry
        .iter()
        .filter_map(|r| r.name().strip_prefix("chopsticks_tests::"))
        .map(|path| path.rsplit("::").next().unwrap())
        .collect();
    registered.sort_unstable();
    let defined = remote_functions_in_source();
    assert!(defined.len() > 40, "read too few: {defined:?}");
    assert_eq!(
        registered, defined,
        "the library's #[remote] functions, as registered and as its source defines them"
    );
    // and the built-in facts
    assert!(registry.iter().any(|r| r.name() == "chopsticks::facts::ip"));
}

/// The names of the `#[remote]` functions that the library's source
/// (`src/*.rs`) defines, sorted: each `fn` under a `#[remote]` attribute;
/// for one a macro defines, each entry (`name: Type;`) of the macro's call.
fn remote_functions_in_source() -> Vec<String> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    for file in std::fs::read_dir(&src).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines().map(str::trim);
        let mut last_macro = "";
        while let Some(line) = lines.next() {
            if let Some(name) = line.strip_prefix("macro_rules! ") {
                last_macro = name.trim_end_matches(" {");
            }
            if !line.starts_with("#[remote") {
                continue;
            }
            let signature = lines.find(|l| l.starts_with("pub fn ")).unwrap();
            let name = signature["pub fn ".len()..]
                .split(['(', '<'])
                .next()
                .unwrap();
            if !name.starts_with('$') {
                names.push(name.to_owned());
                continue;
            }
            let call = format!("\n{last_macro}! {{\n");
            let entries = &text[text.find(&call).unwrap() + call.len()..];
            let entries = &entries[..entries.find("\n}").unwrap()];
            names.extend(
                entries
                    .lines()
                    .map(|l| l.trim().split(':').next().unwrap().to_owned()),
            );
        }
    }
    names.sort_unstable();
    names
}

#[test]
fn a_fixture_binary_serves_the_same_functions() {
    let t = Tunnel::local_binary(env!("CARGO_BIN_EXE_fixture")).unwrap();
    assert_eq!(
        t.call(echo_inventory, (suite::inventory(),)).unwrap(),
        suite::inventory()
    );
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
        text.contains("`chopsticks_tests::fixtures::add`") && text.contains("rebuild"),
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

mod demo {
    pub mod tasks {
        /// The function of the worked example in docs/PROTOCOL.md.
        #[chopsticks::remote]
        pub fn greet(name: String, times: u32) -> String {
            name.repeat(times as usize)
        }
    }
}

#[test]
fn wire_ids_follow_the_documented_scheme() {
    use chopsticks::RemoteFn;
    let expected = chopsticks::__private::wire_id(concat!(
        module_path!(),
        "::demo::tasks::greet(String,u32)->String"
    ));
    assert_eq!(<demo::tasks::greet as RemoteFn>::ID, expected);
    // The documented example's number.
    assert_eq!(
        chopsticks::__private::wire_id("demo::tasks::greet(String,u32)->String"),
        0x49ec_aec5_fd4a_bdb1
    );
    let t = Tunnel::local().unwrap();
    assert_eq!(
        t.call(demo::tasks::greet, ("hi".into(), 3)).unwrap(),
        "hihihi"
    );
}

#[test]
fn thousands_of_unwaited_calls_neither_deadlock_nor_spawn_threads() {
    let t = Tunnel::local().unwrap();
    // Far more reply bytes than the pipes hold, none read until the end.
    let pending: Vec<_> = (0..3000)
        .map(|_| t.call_async(make_bytes, (4096,)))
        .collect();
    let threads = t.call_async(thread_count, ());
    for p in pending {
        assert_eq!(p.wait().unwrap().len(), 4096);
    }
    let threads = threads.wait().unwrap();
    assert!(
        threads <= 8,
        "the agent ran {threads} threads for fast calls"
    );
}

#[test]
fn a_stopped_agent_cannot_hold_a_call_or_close_forever() {
    let t = Tunnel::local().unwrap();
    t.set_call_timeout(Some(Duration::from_millis(500)));
    // SAFETY: stopping our own child process.
    assert_eq!(
        unsafe { libc::kill(t.agent_pid() as i32, libc::SIGSTOP) },
        0
    );
    let start = Instant::now();
    // More than a pipe holds: the send itself must give up.
    let err = t.call(digest, (vec![1u8; 4 << 20],)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let closing = Instant::now();
    t.close();
    assert!(
        closing.elapsed() < Duration::from_secs(5),
        "{:?}",
        closing.elapsed()
    );
}

/// Eight threads each wait for a thousand calls on one tunnel, a hundred
/// times over: the I/O thread delivers every reply to its own waiter, and
/// none sleeps on with its reply in. (Under the old hand-over of a reader
/// role between waiters, this caught a lost hand-over in three runs of four.)
#[test]
fn every_waiter_of_many_threads_gets_its_own_reply() {
    on_eight_threads(100, 1000, |_, w, pending, fail| {
        for (i, p) in pending {
            let sum = p.wait_timeout(Duration::from_secs(30));
            assert_eq!(sum.unwrap_or_else(|e| fail(i, e)), w * 10_000 + i);
        }
    });
}

/// Every way of waiting at once on one tunnel: blocking waits, awaited
/// futures, waits that give up after microseconds, and calls dropped
/// unwaited. None may miss a wake or stop the I/O thread.
#[test]
fn waits_futures_timeouts_and_drops_mix_on_one_tunnel() {
    on_eight_threads(50, 300, |t, w, pending, fail| {
        let bound = Duration::from_secs(30);
        match w % 4 {
            0 => {
                for (i, p) in pending {
                    assert_eq!(
                        p.wait_timeout(bound).unwrap_or_else(|e| fail(i, e)),
                        w * 10_000 + i
                    );
                }
            }
            1 => {
                let results = suite::block_on(async {
                    let mut results = Vec::new();
                    for (i, p) in pending {
                        results.push((i, p.await));
                    }
                    results
                });
                for (i, sum) in results {
                    assert_eq!(sum.unwrap_or_else(|e| fail(i, e)), w * 10_000 + i);
                }
            }
            2 => {
                for (i, p) in pending {
                    let brief = Duration::from_micros((i as u64 * 37) % 200);
                    match p.wait_timeout(brief) {
                        Ok(sum) => assert_eq!(sum, w * 10_000 + i),
                        Err(Error::Timeout { .. }) => {}
                        Err(e) => {
                            fail(i, e);
                        }
                    }
                }
            }
            _ => {
                for (i, p) in pending {
                    if i % 2 == 0 {
                        drop(p);
                    } else {
                        assert_eq!(
                            p.wait_timeout(bound).unwrap_or_else(|e| fail(i, e)),
                            w * 10_000 + i
                        );
                    }
                }
            }
        }
        // Whatever the others did, the tunnel still answers.
        let last = t.call_async(add, (1, w)).wait_timeout(bound);
        assert_eq!(last.unwrap_or_else(|e| fail(-1, e)), 1 + w);
    });
}

/// One thread's work in [`on_eight_threads`].
type ThreadBody = fn(&Tunnel, i64, Vec<(i64, Pending<i64>)>, &dyn Fn(i64, Error) -> i64);

/// `rounds` times: a fresh local tunnel, 8 threads that each send `calls`
/// calls `add(w * 10_000, i)` without waiting and hand them to `body` with
/// the tunnel, the thread number and a `fail(i, error)` that panics with
/// round, thread and call.
fn on_eight_threads(rounds: usize, calls: i64, body: ThreadBody) {
    for round in 0..rounds {
        let t = std::sync::Arc::new(Tunnel::local().unwrap());
        // Every call then also has a deadline in the tunnel's heap.
        t.set_call_timeout(Some(Duration::from_secs(60)));
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    let pending = (0..calls)
                        .map(|i| (i, t.call_async(add, (w * 10_000, i))))
                        .collect();
                    let fail = |i: i64, e: Error| -> i64 {
                        panic!("round {round}, thread {w}, call {i}: {e}")
                    };
                    body(&t, w, pending, &fail);
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
}

/// A waker is the executor's code, run by the tunnel's I/O thread when it
/// delivers a reply or fails a call at its deadline. One that panics must
/// not stop that thread: later calls are still read and still timed.
#[test]
fn a_panicking_waker_stops_neither_reading_nor_timing() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};
    struct Panics;
    impl Wake for Panics {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("this waker panics");
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Panics));
    let mut cx = Context::from_waker(&waker);
    let t = Tunnel::local().unwrap();
    // Its reply is delivered, with the role held, to the panicking waker.
    // The call sleeps so that it cannot be answered before the first poll.
    let mut answered = t.call_async(sleep_ms, (200,));
    assert!(std::pin::Pin::new(&mut answered).poll(&mut cx).is_pending());
    // Its deadline passes, and the timer wakes the panicking waker.
    t.set_call_timeout(Some(Duration::from_millis(250)));
    let mut expired = t.call_async(sleep_ms, (5_000,));
    assert!(std::pin::Pin::new(&mut expired).poll(&mut cx).is_pending());
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(answered.wait_timeout(Duration::from_secs(10)).unwrap(), 200);
    // Waited for with its own deadline (a `wait_timeout` would replace it,
    // and the I/O thread may still be printing the first waker's panic,
    // backtrace and all, on a loaded machine); the call would end in 5 s.
    let err = expired.wait().unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    // Someone still reads replies, and the timer still times awaited calls.
    t.set_call_timeout(None);
    assert_eq!(
        t.call_async(add, (2, 2))
            .wait_timeout(Duration::from_secs(10))
            .unwrap(),
        4
    );
    t.set_call_timeout(Some(Duration::from_millis(100)));
    let slow = suite::block_on(t.call_async(sleep_ms, (2_000,)));
    assert!(matches!(slow, Err(Error::Timeout { .. })), "{slow:?}");
}

/// A call made while another runs is corked, to go to the agent with the
/// calls that follow it; one that nobody waits for still runs, soon, and
/// calls after it keep their order.
#[test]
fn a_corked_call_nobody_waits_for_still_runs() {
    use chopsticks::ops::{self, Mode};
    let t = Tunnel::local().unwrap();
    let dir = std::env::temp_dir().join(format!("chopsticks-cork-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("written");
    let slow = t.call_async(sleep_ms, (3_000,));
    let start = Instant::now();
    let spec = ops::File::new(marker.to_str().unwrap()).content("corked\n");
    let write = t.call_async(ops::file, (spec, Mode::Apply));
    while !marker.exists() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waited = start.elapsed();
    assert!(marker.exists(), "the corked call did not run in {waited:?}");
    assert!(write.wait().unwrap().changed);
    // Dropped unanswered, a corked call still runs (as `Pending` says).
    let dropped = dir.join("dropped");
    let spec = ops::File::new(dropped.to_str().unwrap()).content("dropped\n");
    drop(t.call_async(ops::file, (spec, Mode::Apply)));
    let start = Instant::now();
    while !dropped.exists() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(dropped.exists(), "the dropped call did not run");
    // A caller that goes on issuing calls without waiting (each within
    // the cork's quiet time of the one before) does not hold back the
    // first for long: the cork has an age limit (10 ms), far below the
    // 64 KiB of calls that would write it otherwise (about 3000 here,
    // half a second at this pace).
    let limited = dir.join("limited");
    let spec = ops::File::new(limited.to_str().unwrap()).content("limited\n");
    let start = Instant::now();
    let first = t.call_async(ops::file, (spec, Mode::Apply));
    let mut adds = Vec::new();
    let mut seen = None;
    while start.elapsed() < Duration::from_millis(800) {
        adds.push(t.call_async(add, (1, 1)));
        if seen.is_none() && limited.exists() {
            seen = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let seen = seen.expect("the first call of a long stream never ran before anyone waited");
    assert!(seen < Duration::from_millis(300), "it ran after {seen:?}");
    assert!(first.wait().unwrap().changed);
    assert!(adds.into_iter().all(|p| p.wait().unwrap() == 2));
    // A burst behind a slow call: each reply to its own call, in order.
    let burst: Vec<_> = (0..500).map(|i| t.call_async(add, (i, 1))).collect();
    for (i, p) in burst.into_iter().enumerate() {
        assert_eq!(p.wait().unwrap(), i as i64 + 1);
    }
    assert_eq!(slow.wait().unwrap(), 3_000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A burst of calls round robin over tunnels with nothing in flight: each
/// call after the first is corked although alone on its tunnel (to reach
/// it with the rest of the burst), yet runs when nobody waits, and when
/// the thread waits for a slow call of the burst; a burst waited for in
/// order gets every reply.
#[test]
fn a_burst_over_tunnels_runs_whoever_waits() {
    use chopsticks::ops::{self, Mode};
    let ts: Vec<Tunnel> = (0..3).map(|_| Tunnel::local().unwrap()).collect();
    let dir = std::env::temp_dir().join(format!("chopsticks-burst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| {
        let path = dir.join(name);
        (ops::File::new(path.to_str().unwrap()).content("x\n"), path)
    };
    let exists_within = |path: &std::path::Path, bound: Duration| {
        let start = Instant::now();
        while !path.exists() && start.elapsed() < bound {
            std::thread::sleep(Duration::from_millis(1));
        }
        path.exists()
    };
    // Nobody waits: the process's cork watcher writes them.
    let (spec1, path1) = file("one");
    let (spec2, path2) = file("two");
    let first = ts[0].call_async(ops::file, (spec1, Mode::Apply));
    let second = ts[1].call_async(ops::file, (spec2, Mode::Apply));
    assert!(exists_within(&path1, Duration::from_secs(2)));
    assert!(
        exists_within(&path2, Duration::from_secs(2)),
        "a corked lone call never ran"
    );
    assert!(first.wait().unwrap().changed && second.wait().unwrap().changed);
    // The thread waits for the slow call of its burst: the rest runs
    // meanwhile (written when the wait begins, or else by the watcher: this
    // says only that it does not wait for the slow call).
    let (spec3, path3) = file("three");
    let slow = ts[0].call_async(sleep_ms, (1_500,));
    let during = ts[1].call_async(ops::file, (spec3, Mode::Apply));
    assert_eq!(slow.wait().unwrap(), 1_500);
    assert!(
        path3.exists(),
        "the burst's other call did not run while its thread waited"
    );
    assert!(during.wait().unwrap().changed);
    // Waited for in order, round robin.
    for _ in 0..3 {
        let burst: Vec<_> = (0..300i64)
            .map(|i| ts[i as usize % ts.len()].call_async(add, (i, 1)))
            .collect();
        for (i, p) in burst.into_iter().enumerate() {
            assert_eq!(p.wait().unwrap(), i as i64 + 1);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An agent that stops reading (frozen here) cannot block the caller:
/// `call_async` returns at once however much is queued, each call fails at
/// its deadline counted from the call, and calls that could not be sent in
/// time are never sent, so the tunnel works again once the agent reads.
#[test]
fn call_async_returns_at_once_when_the_agent_stops_reading() {
    let t = Tunnel::local().unwrap();
    let timeout = Duration::from_millis(800);
    t.set_call_timeout(Some(timeout));
    let pid = t.agent_pid() as i32;
    // SAFETY: stopping our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let start = Instant::now();
    // 1.5 MiB of arguments: far more than a pipe holds (64 KiB).
    let mut pending: Vec<_> = (0..6)
        .map(|_| t.call_async(digest, (vec![7u8; 256 << 10],)))
        .collect();
    // And many small calls behind them: each returns at once too (a call
    // queued behind a stopped agent costs no look at the others).
    pending.extend((0..20_000).map(|_| t.call_async(digest, (vec![1u8; 8],))));
    let issued = start.elapsed();
    assert!(issued < timeout / 2, "call_async blocked for {issued:?}");
    for p in pending {
        let err = p.wait().unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    }
    let failed = start.elapsed();
    assert!(
        failed < timeout + Duration::from_secs(2),
        "the timeouts counted from the end of the send: {failed:?}"
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    t.set_call_timeout(Some(Duration::from_secs(60)));
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3, "the stream is intact");
    assert_eq!(t.call(digest, (vec![1u8; 10],)).unwrap().0, 10);
}

/// This program's stderr is a pipe nobody reads (a stopped pager, a
/// supervisor): forwarding the host's stderr must not stop the tunnel from
/// reading replies. Lines beyond what can wait are dropped and counted.
#[test]
fn a_stderr_nobody_reads_does_not_stop_the_tunnel() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chatty"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
        let _ = tx.send(text);
    });
    let out = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let out = out.expect("the controller hung on a stderr nobody reads");
    assert_eq!(out.trim(), "ok 42");
}

#[test]
fn huge_timeouts_mean_no_timeout() {
    let t = Tunnel::local().unwrap();
    let pending = t.call_async(add, (1, 2));
    assert_eq!(pending.wait_timeout(Duration::MAX).unwrap(), 3);
    t.set_call_timeout(Some(Duration::MAX));
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
}

#[test]
fn a_program_without_an_entry_point_refuses_before_starting_anything() {
    // Run directly: its main calls Tunnel::local(), which must refuse
    // instead of starting a copy that would run that main again.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_no_entry"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stdout, "doing the main job instead of serving\n",
        "main ran once"
    );
    assert!(stderr.contains("cannot be its own agent"), "{stderr}");
    assert!(stderr.contains("#[chopsticks::main]"), "{stderr}");
}

/// Whatever a host writes on stderr or logs reaches this terminal without
/// its control characters (shown as `^[`, `^G` ...; tabs kept): a host can
/// neither colour our output nor move the cursor, set the title or ring.
#[test]
fn a_host_cannot_send_terminal_escapes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escapes"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{stderr}"
    );
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("red:")).collect();
    assert_eq!(said.len(), 2, "a stderr line and a log record: {stderr}");
    for line in said {
        assert!(
            !line.contains(['\x1b', '\x07', '\u{9b}']),
            "a control character got through: {line:?}"
        );
        assert!(
            line.contains("red:^[[31mX^[[0m title:^[]0;pwned^G bell:^G up:^[[2A")
                && line.contains("csi:\\u{9b}2J tab:\tend"),
            "{line:?}"
        );
    }
}

/// A function that opens a tunnel to its own host nests agents; nesting
/// stops at the limit (2 by default) with an error that says so, instead
/// of forking without end.
#[test]
fn nesting_stops_at_the_depth_limit() {
    let t = Tunnel::local().unwrap();
    t.set_call_timeout(Some(Duration::from_secs(60)));
    assert_eq!(chopsticks::agent::depth(), 0, "the test program itself");
    assert_eq!(t.call(nest, (0, None)).unwrap(), 1);
    assert_eq!(t.call(nest, (1, None)).unwrap(), 2);
    let refused = t.call(nest, (50, None)).unwrap_err().to_string();
    assert!(
        refused.contains("agents nest too deep: this agent, at depth 2, would start one at depth 3, beyond the limit of 2"),
        "{refused}"
    );
    // The limit is the first controller's, passed on; a tunnel may set its own.
    let deeper = chopsticks::TunnelBuilder::local()
        .max_depth(3)
        .connect()
        .unwrap();
    assert_eq!(deeper.call(nest, (2, None)).unwrap(), 3);
    let refused = deeper.call(nest, (50, None)).unwrap_err().to_string();
    assert!(refused.contains("beyond the limit of 3"), "{refused}");
    let none = chopsticks::TunnelBuilder::local()
        .max_depth(0)
        .connect()
        .unwrap_err();
    assert!(
        none.to_string()
            .contains("this program would start one at depth 1, beyond the limit of 0"),
        "{none}"
    );
}

/// The agent's threads on this machine (local tunnels run here).
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// How many times the threads of process `pid` went to sleep so far.
fn sleeps_of(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// An agent between calls sleeps: its watchdog, which ticks every
/// millisecond while calls run, stops soon after the last (a fan-out's
/// agents wait for the rest of their run, and fifty of them ticking took a
/// fifth of a small machine).
#[test]
fn an_idle_agent_does_not_tick() {
    let t = Tunnel::local().unwrap();
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
    std::thread::sleep(Duration::from_millis(50));
    let before = sleeps_of(t.agent_pid());
    std::thread::sleep(Duration::from_millis(300));
    let woke = sleeps_of(t.agent_pid()) - before;
    assert!(woke < 30, "the idle agent woke {woke} times in 300 ms");
    // And the next call wakes it: a slow call still gives up the reader,
    // so the call behind it is answered long before it ends.
    let slow = t.call_async(sleep_ms, (1_000,));
    let start = Instant::now();
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
    let behind = start.elapsed();
    assert!(
        behind < Duration::from_millis(700),
        "answered after {behind:?}"
    );
    assert_eq!(slow.wait().unwrap(), 1_000);
}

/// Slow calls get threads of their own up to the agent's limit; past it
/// the requests behind a slow call wait their turn, and every call still
/// completes.
#[test]
fn slow_calls_beyond_the_thread_limit_wait_their_turn() {
    let t = chopsticks::TunnelBuilder::local()
        .max_call_threads(4)
        .call_timeout(Duration::from_secs(60))
        .connect()
        .unwrap();
    t.call(add, (1, 1)).unwrap();
    let idle = threads_of(t.agent_pid());
    let pending: Vec<_> = (0..12).map(|_| t.call_async(sleep_ms, (300,))).collect();
    let mut most = idle;
    let until = std::time::Instant::now() + Duration::from_millis(700);
    while std::time::Instant::now() < until {
        most = most.max(threads_of(t.agent_pid()));
        std::thread::sleep(Duration::from_millis(5));
    }
    for p in pending {
        assert_eq!(p.wait().unwrap(), 300);
    }
    // The reader's and a standby thread may come and go beside the four.
    assert!(
        most <= idle + 4 + 1,
        "{most} threads with a limit of 4 call threads (idle: {idle})"
    );
    assert!(most > idle, "the slow calls got threads of their own");
}

/// A thousand slow calls at once on one tunnel all complete, within the
/// default thread limit.
#[test]
fn a_thousand_concurrent_slow_calls_on_one_tunnel_complete() {
    let t = Tunnel::local().unwrap();
    t.set_call_timeout(Some(Duration::from_secs(120)));
    let pending: Vec<_> = (0..1000).map(|_| t.call_async(sleep_ms, (200,))).collect();
    for p in pending {
        assert_eq!(p.wait().unwrap(), 200);
    }
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4, "the tunnel is intact");
}

/// The peak memory of a process on this machine, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A 100 MiB return value is a clear error that says what to do, made in
/// bounded memory on the agent (its JSON would be about 400 MB); the
/// tunnel goes on.
#[test]
fn a_hundred_mib_return_value_is_a_clear_error_in_bounded_memory() {
    let t = Tunnel::local().unwrap();
    t.set_call_timeout(Some(Duration::from_secs(120)));
    let err = t.call(make_bytes, (100 << 20,)).unwrap_err().to_string();
    assert!(
        err.contains("larger than the frame limit") && err.contains("call_with_output"),
        "{err}"
    );
    // The function's own 100 MiB, the frame's 64 MiB, and the rest.
    let peak = peak_rss(t.agent_pid());
    assert!(peak < 230 << 20, "the agent peaked at {} MiB", peak >> 20);
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
}

/// The README's first command, `cargo run --release --example facts`, with
/// no host: a header and one row, this machine's, through a local tunnel.
/// (The binary is the example's source, built here as `facts`.)
#[test]
fn the_readmes_first_command_prints_this_machines_row() {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(readme).unwrap();
    assert!(
        readme.contains("\ncargo run --release --example facts "),
        "the README's command is the one this test runs"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facts"))
        .env_remove("CHOPSTICKS_AGENT_BINARY")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {stdout}{stderr}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["HOST", "HOSTNAME", "IP", "KERNEL", "UPTIME", "LOAD"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    let hostname = chopsticks::facts::hostname().unwrap();
    let kernel = chopsticks::facts::kernel().unwrap();
    assert_eq!(row[..2], ["localhost", hostname.as_str()], "{stdout}");
    assert!(row.contains(&kernel.as_str()), "{stdout}");
}
