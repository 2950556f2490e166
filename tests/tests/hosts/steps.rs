//! What the operation tests share: a tunnel to a host by name (a local
//! tunnel for `localhost`), a fresh directory there, what a tree holds,
//! and the one check every operation passes: check mode changes nothing
//! and says what apply then does, and a second apply changes nothing.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chopsticks::ops::{self, Change, Mode};
use chopsticks::Tunnel;
use chopsticks_tests::*;

/// A local tunnel for `localhost`, else ssh to the test host `alias`.
pub(crate) fn connect(host: &str) -> Tunnel {
    let t = match host {
        "localhost" => Tunnel::local().unwrap(),
        alias => test_host(alias)
            .connect()
            .unwrap_or_else(|e| panic!("connecting to {alias}: {e}")),
    };
    t.set_call_timeout(Some(Duration::from_secs(120)));
    t
}

/// Everything at and under `path` on the host.
pub(crate) fn listing(t: &Tunnel, path: &Path) -> Vec<Entry> {
    t.call(tree_listing, (path.as_os_str().as_bytes().to_vec(),))
        .unwrap()
}

/// The text of `path` on the host.
pub(crate) fn read(t: &Tunnel, path: &Path) -> String {
    t.call(read_file, (path.display().to_string(),)).unwrap()
}

/// A fresh directory on the host, `/tmp/cs-ops-TEST-PID`.
pub(crate) fn scratch(t: &Tunnel, test: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/cs-ops-{test}-{}", std::process::id()));
    t.call(remove_tree, (dir.as_os_str().as_bytes().to_vec(),))
        .unwrap();
    t.call(ops::directory, (ops::Directory::new(&dir), Mode::Apply))
        .unwrap();
    dir
}

/// Runs `step` in check mode and asserts that nothing under `root`
/// changed; then apply, which must report what check said (word for
/// word, but for what only apply can know: a backup's path, a command's
/// output); then a second apply and check, which must change nothing.
/// Returns apply's change.
pub(crate) fn check_then_apply(
    t: &Tunnel,
    root: &Path,
    step: &dyn Fn(Mode) -> chopsticks::Result<Change>,
) -> Change {
    check_then_apply_state(&|| listing(t, root), step)
}

/// As [`check_then_apply`], with `state` (what the host has, read
/// without the operation: a process, a service's links) in place of a
/// tree's listing.
pub(crate) fn check_then_apply_state<S: PartialEq + std::fmt::Debug>(
    state: &dyn Fn() -> S,
    step: &dyn Fn(Mode) -> chopsticks::Result<Change>,
) -> Change {
    let before = state();
    let check = step(Mode::Check).unwrap();
    assert_eq!(state(), before, "check mode changed the host");
    let apply = step(Mode::Apply).unwrap();
    assert_eq!(check.backup, None, "check mode names no backup");
    let comparable = match apply.output {
        // A command's check cannot know what it prints.
        Some(_) => Change {
            summary: check.summary.clone(),
            output: check.output.clone(),
            ..apply.clone()
        },
        None => apply.clone(),
    };
    assert_eq!(
        check,
        Change {
            backup: None,
            ..comparable
        },
        "check mode said otherwise than apply did"
    );
    let again = step(Mode::Apply).unwrap();
    assert!(
        !again.changed,
        "a second apply changed something: {again:?}"
    );
    assert_eq!(step(Mode::Check).unwrap(), again);
    apply
}
