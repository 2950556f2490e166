//! The file-transfer suite, run against every kind of host `files.rs`
//! names: round trips, trees, skipping, errors and faults. Paths on the
//! host are checked with `tree_listing`, a `#[remote]` function of this crate.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chopsticks::{Error, Source, Tunnel};
use chopsticks_tests::*;

/// Where the suite runs.
pub struct Target {
    pub host: &'static str,
    pub connect: fn() -> Tunnel,
}

/// No transfer waits without a bound.
pub const TEST_CALL_TIMEOUT: Duration = Duration::from_secs(300);

impl Target {
    pub fn connect(&self) -> Tunnel {
        let t = (self.connect)();
        t.set_call_timeout(Some(TEST_CALL_TIMEOUT));
        t
    }
}

/// One test of the suite: `body` run against each target `files` names
/// in its `transfer_targets!` macro, as `transfers::NAME::TARGET`.
macro_rules! transfer_test {
    ($name:ident, |$target:ident| $body:block) => {
        fn $name($target: &Target) $body

        mod $name {
            transfer_targets!(super::$name);
        }
    };
}

/// A directory of this machine for one test, fresh.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs-files-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A directory on the host for one test, fresh (for a local tunnel, one
/// beside [`scratch`]).
pub fn remote_scratch(t: &Tunnel, test: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/tmp/cs-files-remote-{test}-{}",
        std::process::id()
    ));
    t.put(Source::bytes(b""), dir.join("x"))
        .parents(true)
        .run()
        .unwrap();
    dir
}

/// `len` bytes that do not compress, the same for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Removes what a test wrote on both sides.
fn clean(t: &Tunnel, here: &Path, there: &Path) {
    let _ = std::fs::remove_dir_all(here);
    t.call(remove_tree, (there.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

fn remote_listing(t: &Tunnel, path: &Path) -> Vec<Entry> {
    t.call(tree_listing, (path.as_os_str().as_bytes().to_vec(),))
        .unwrap()
}

/// The listing once no temporary file is left, or after 10 s: what a
/// cancelled or killed transfer leaves is removed when its function (or
/// the janitor of a killed agent) gets to it, a moment after the failure.
fn settled_listing(t: &Tunnel, path: &Path) -> Vec<Entry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = remote_listing(t, path);
        if temporaries(&entries).is_empty() || Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn temporaries(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.0).into_owned())
        .filter(|p| p.contains(".chopsticks-"))
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

transfer_test!(files_round_trip_with_their_content_and_mode, |target| {
    let t = target.connect();
    let here = scratch(&format!("round-trip-{}", target.host));
    let there = remote_scratch(&t, &format!("round-trip-{}", target.host));
    for (name, len, mode) in [
        ("empty", 0, 0o644),
        ("one", 1, 0o644),
        ("big", 64 << 20, 0o644),
        ("secret", 100, 0o600),
    ] {
        let data = noise(len, len as u64);
        let src = here.join(name);
        std::fs::write(&src, &data).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(mode)).unwrap();
        let put = t.put(&src, there.join(name)).run().unwrap();
        assert_eq!(
            (put.bytes, put.changed, put.files_sent, put.tree),
            (len as u64, true, 1, false),
            "{name}: {put:?}"
        );
        assert_eq!(put.sha256, sha256_hex(&data), "{name}");
        assert_eq!(put.remote, there.join(name));
        let back = here.join(format!("{name}.back"));
        let fetched = t.fetch(there.join(name), &back).run().unwrap();
        assert_eq!(fetched.sha256, put.sha256, "{name}");
        assert!(std::fs::read(&back).unwrap() == data, "{name}: content");
        assert_eq!(mode_of(&back), mode, "{name}: mode kept both ways");
    }
    assert_eq!(
        temporaries(&remote_listing(&t, &there)),
        Vec::<String>::new()
    );
    // From memory, with options.
    let conf = there.join("deep/er/app.conf");
    let put = t
        .put(Source::bytes("key = 1\n"), &conf)
        .mode(0o640)
        .parents(true)
        .run()
        .unwrap();
    assert!(put.changed && put.local.as_os_str().is_empty());
    let entries = remote_listing(&t, &conf);
    assert_eq!(entries[0].1, 'f');
    assert_eq!(entries[0].2, 0o640);
    assert_eq!(entries[0].3, sha256_hex(b"key = 1\n"));
    clean(&t, &here, &there);
});

transfer_test!(identical_content_is_not_sent_again, |target| {
    let t = target.connect();
    let here = scratch(&format!("same-{}", target.host));
    let there = remote_scratch(&t, &format!("same-{}", target.host));
    let src = here.join("f");
    std::fs::write(&src, noise(1 << 20, 1)).unwrap();
    let first = t.put(&src, there.join("f")).run().unwrap();
    assert!(first.changed);
    let again = t.put(&src, there.join("f")).run().unwrap();
    assert_eq!(
        (
            again.changed,
            again.bytes,
            again.files_sent,
            again.files_skipped
        ),
        (false, 0, 0, 1),
        "{again:?}"
    );
    assert_eq!(again.sha256, first.sha256);
    // Only the mode differs: nothing is sent, but the file changed.
    let chmod = t.put(&src, there.join("f")).mode(0o600).run().unwrap();
    assert_eq!((chmod.changed, chmod.bytes), (true, 0), "{chmod:?}");
    assert_eq!(remote_listing(&t, &there.join("f"))[0].2, 0o600);
    // Same size, other content: sent.
    std::fs::write(&src, noise(1 << 20, 2)).unwrap();
    let other = t.put(&src, there.join("f")).run().unwrap();
    assert_eq!((other.changed, other.files_sent), (true, 1), "{other:?}");
    // Fetching onto an identical local copy sends nothing either.
    let back = here.join("back");
    assert!(t.fetch(there.join("f"), &back).run().unwrap().changed);
    let again = t.fetch(there.join("f"), &back).run().unwrap();
    assert_eq!((again.changed, again.bytes), (false, 0), "{again:?}");
    clean(&t, &here, &there);
});

/// A tree of `files` small files in 20 directories, with links (to a file,
/// to a directory, dangling), an empty directory, a file of mode 0600 and
/// names that are not UTF-8.
pub fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i:04}")),
            noise(1 + i * 7 % 4096, i as u64),
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("d00/f0000", root.join("to-file")).unwrap();
    std::os::unix::fs::symlink("d01", root.join("to-dir")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    let odd = root.join(OsStr::from_bytes(b"caf\xe9 \xff"));
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join(OsStr::from_bytes(b"n\xe4me")), b"latin-1").unwrap();
    let secret = root.join("secret");
    std::fs::write(&secret, b"s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
}

transfer_test!(
    a_tree_round_trips_with_links_modes_and_odd_names,
    |target| {
        let t = target.connect();
        let here = scratch(&format!("tree-{}", target.host));
        let there = remote_scratch(&t, &format!("tree-{}", target.host));
        let src = here.join("src");
        make_tree(&src, 1000);
        let want = local_listing(&src);
        let put = t.put(&src, there.join("tree")).run().unwrap();
        assert!(put.tree && put.changed, "{put:?}");
        assert_eq!(put.files_sent, 1002, "{put:?}");
        assert_eq!(remote_listing(&t, &there.join("tree")), want);
        let back = here.join("back");
        let fetched = t.fetch(there.join("tree"), &back).run().unwrap();
        assert_eq!(fetched.sha256, put.sha256);
        assert_eq!(local_listing(&back), want);
        // Unchanged: nothing is sent.
        let again = t.put(&src, there.join("tree")).run().unwrap();
        assert_eq!(
            (
                again.changed,
                again.files_sent,
                again.files_skipped,
                again.bytes
            ),
            (false, 0, 1002, 0),
            "{again:?}"
        );
        // One file changed: only it is sent.
        std::fs::write(src.join("d05/f0005"), b"changed").unwrap();
        let one = t.put(&src, there.join("tree")).run().unwrap();
        assert_eq!(
            (one.changed, one.files_sent, one.bytes),
            (true, 1, 7),
            "{one:?}"
        );
        assert_eq!(remote_listing(&t, &there.join("tree")), local_listing(&src));
        assert_eq!(
            temporaries(&remote_listing(&t, &there)),
            Vec::<String>::new()
        );
        clean(&t, &here, &there);
    }
);

fn transfer_error(result: chopsticks::Result<chopsticks::Transfer>) -> (String, PathBuf, bool) {
    match result {
        Err(Error::Transfer {
            host,
            path,
            local,
            message,
        }) => {
            let text = Error::Transfer {
                host: host.clone(),
                path: path.clone(),
                local,
                message,
            }
            .to_string();
            assert!(text.starts_with(&format!("{host}: ")), "{text}");
            (text, path, local)
        }
        other => panic!("expected a transfer error, got {other:?}"),
    }
}

transfer_test!(errors_name_the_host_and_the_path, |target| {
    let t = target.connect();
    let here = scratch(&format!("errors-{}", target.host));
    let there = remote_scratch(&t, &format!("errors-{}", target.host));
    let src = here.join("f");
    std::fs::write(&src, b"data").unwrap();
    let host = target.host;

    let (text, path, local) = transfer_error(t.put(&src, there.join("missing/f")).run());
    assert_eq!((path, local), (there.join("missing"), false));
    assert!(text.starts_with(&format!("{host}: ")), "{text}");
    assert!(
        text.contains("does not exist") && text.contains("parents(true)"),
        "{text}"
    );

    let (text, path, _) = transfer_error(t.put(&src, &there).run());
    assert_eq!(path, there);
    assert!(text.contains("is a directory"), "{text}");

    let (text, path, local) = transfer_error(t.put(here.join("nope"), there.join("f")).run());
    assert_eq!((path, local), (here.join("nope"), true));
    assert!(
        text.contains("(on this machine)") && text.contains("no such file"),
        "{text}"
    );

    let (text, path, local) = transfer_error(t.fetch(there.join("nope"), here.join("g")).run());
    assert_eq!((path, local), (there.join("nope"), false));
    assert!(text.contains("no such file"), "{text}");

    // Not a regular file: a FIFO on the host.
    let (text, _, _) = transfer_error(t.fetch("/dev/null", here.join("null")).run());
    assert!(text.contains("not a regular file"), "{text}");
    assert!(!here.join("null").exists());
    // The tunnel is still fine.
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
    clean(&t, &here, &there);
});

transfer_test!(
    a_killed_agent_leaves_the_old_file_and_no_temporary,
    |target| {
        let t = target.connect();
        let here = scratch(&format!("killed-{}", target.host));
        let there = remote_scratch(&t, &format!("killed-{}", target.host));
        let dest = there.join("f");
        t.put(Source::bytes(b"old"), &dest).run().unwrap();
        let src = here.join("big");
        std::fs::write(&src, noise(256 << 20, 3)).unwrap();
        std::thread::scope(|s| {
            let put = s.spawn(|| t.put(&src, &dest).run());
            // Kill the agent once the content streams: calls still flow.
            std::thread::sleep(Duration::from_millis(300));
            let _ = t.call(kill_agent, ());
            let err = put.join().unwrap().unwrap_err();
            assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
        });
        let t = target.connect();
        let entries = settled_listing(&t, &there);
        assert_eq!(temporaries(&entries), Vec::<String>::new(), "{entries:?}");
        let f = entries.iter().find(|e| e.0 == b"f").unwrap();
        assert_eq!(f.3, sha256_hex(b"old"), "the old content is intact");
        clean(&t, &here, &there);
    }
);

transfer_test!(a_transfer_honours_the_call_timeout, |target| {
    let t = target.connect();
    let here = scratch(&format!("timeout-{}", target.host));
    let there = remote_scratch(&t, &format!("timeout-{}", target.host));
    let dest = there.join("f");
    t.put(Source::bytes(b"old"), &dest).run().unwrap();
    let src = here.join("big");
    std::fs::write(&src, noise(256 << 20, 4)).unwrap();
    t.set_call_timeout(Some(Duration::from_millis(300)));
    let start = Instant::now();
    let err = t.put(&src, &dest).run().unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    t.set_call_timeout(Some(TEST_CALL_TIMEOUT));
    // The agent saw the cancel: the old file stays, no temporary is left.
    let entries = settled_listing(&t, &there);
    assert_eq!(temporaries(&entries), Vec::<String>::new(), "{entries:?}");
    let f = entries.iter().find(|e| e.0 == b"f").unwrap();
    assert_eq!(f.3, sha256_hex(b"old"));
    // A peer that never grants more credit holds the caller only until the
    // call's deadline.
    t.set_call_timeout(Some(Duration::from_millis(500)));
    let start = Instant::now();
    let err = t
        .call_with_input(hold_input, (10_000,), &noise(16 << 20, 5)[..])
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    t.set_call_timeout(Some(TEST_CALL_TIMEOUT));
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
    clean(&t, &here, &there);
});

transfer_test!(dropping_a_transfer_handle_cancels_it, |target| {
    let t = target.connect();
    let here = scratch(&format!("cancel-{}", target.host));
    let there = remote_scratch(&t, &format!("cancel-{}", target.host));
    let dest = there.join("f");
    t.put(Source::bytes(b"old"), &dest).run().unwrap();
    let src = here.join("big");
    std::fs::write(&src, noise(256 << 20, 8)).unwrap();
    let upload = t.put(&src, &dest).spawn();
    // Probing or streaming by now: either way the cancel must win.
    std::thread::sleep(Duration::from_millis(50));
    if upload.is_finished() {
        panic!(
            "the put finished too soon to test its cancel: {:?}",
            upload.wait()
        );
    }
    let start = Instant::now();
    drop(upload);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The agent saw the cancel; the tunnel goes on.
    assert_eq!(t.call(add, (1, 1)).unwrap(), 2);
    let entries = remote_listing(&t, &there);
    assert_eq!(temporaries(&entries), Vec::<String>::new(), "{entries:?}");
    let f = entries.iter().find(|e| e.0 == b"f").unwrap();
    assert_eq!(f.3, sha256_hex(b"old"));
    // A fetch cancelled likewise leaves nothing here.
    t.put(&src, there.join("big")).run().unwrap();
    let download = t.fetch(there.join("big"), here.join("back")).spawn();
    std::thread::sleep(Duration::from_millis(50));
    drop(download);
    let left: Vec<String> = local_listing(&here)
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.0).into_owned())
        .collect();
    assert_eq!(left, ["", "big"], "nothing of the fetch is left");
    // Waited for, a handle gives the transfer's result.
    let again = t.put(&src, there.join("big")).spawn();
    assert!(!again.wait().unwrap().changed);
    clean(&t, &here, &there);
});

transfer_test!(other_calls_flow_during_a_transfer, |target| {
    let t = target.connect();
    let here = scratch(&format!("flow-{}", target.host));
    let there = remote_scratch(&t, &format!("flow-{}", target.host));
    let src = here.join("big");
    std::fs::write(&src, noise(256 << 20, 6)).unwrap();
    let (put, calls) = std::thread::scope(|s| {
        let put = s.spawn(|| {
            let put = t.put(&src, there.join("big")).run();
            (put, Instant::now())
        });
        let mut worst = Duration::ZERO;
        let mut during = 0;
        for i in 0..1000 {
            let start = Instant::now();
            assert_eq!(t.call(add, (i, 1)).unwrap(), i + 1);
            worst = worst.max(start.elapsed());
            if !put.is_finished() {
                during += 1;
            }
        }
        let (put, done) = put.join().unwrap();
        (put.map(|p| (p, done)), (worst, during))
    });
    let (put, _) = put.unwrap();
    assert_eq!(put.bytes, 256 << 20);
    let (worst, during) = calls;
    eprintln!(
        "{}: {during} of 1000 calls ran during the put; the slowest took {worst:?}",
        target.host
    );
    assert!(
        during > 0,
        "the put finished before any call: make it bigger"
    );
    // A hang guard, not a speed target (those are in benches/files.rs).
    assert!(
        worst < Duration::from_secs(10),
        "a call took {worst:?} during the put"
    );
    clean(&t, &here, &there);
});

transfer_test!(streams_reach_remote_functions_both_ways, |target| {
    let t = target.connect();
    let data = noise(5 << 20, 7);
    let (len, _) = t.call_with_input(digest_input, (), &data[..]).unwrap();
    assert_eq!(len, data.len());
    let mut out = Vec::new();
    let n = t
        .call_with_output(stream_bytes, (3 << 20,), &mut out)
        .unwrap();
    assert_eq!(n, 3 << 20);
    assert!(out == make_bytes(3 << 20));
    // A function that takes no stream when given one, and vice versa.
    let err = t
        .call_with_output(digest_input, (), &mut Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("no input stream"), "{err}");
});
