//! The package operation against real dnf: cs-dnf, a Debian 12 container
//! whose package manager is dnf (apt removed), with a local rpm repository
//! (cs-hello 1.0 and 1.1, cs-tool 1.0 requiring cs-hello). Plans come
//! from dnf's own simulation: check names dependencies and dependents,
//! changes nothing, and says what apply then does; rpm's database is read
//! back with `rpm -q`, run with another HOME than root's (Debian's rpm
//! would look in ~/.rpmdb; the image sets `%_dbpath /var/lib/rpm`).

use std::sync::MutexGuard;

use chopsticks::ops::{self, Change, Mode, Package};
use chopsticks::{Error, Tunnel};

use crate::steps::connect;
use crate::system_ops::check_then_apply;

fn package(t: &Tunnel, spec: Package, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::package, (spec, mode))
}

/// `spec`'s [`Package::plan`], run on the host: what an operation made of
/// others does with it.
#[chopsticks::remote]
fn planned_package(spec: Package, mode: Mode) -> Result<Change, ops::OpError> {
    spec.plan()?.run(mode)
}

/// What `rpm -q` says of the test packages: `NAME-VERSION-RELEASE` or
/// `package NAME is not installed`, one line each (its status counts
/// those that are not).
fn rpm_q(t: &Tunnel) -> Vec<String> {
    let script = "HOME=/tmp rpm -q cs-hello cs-tool || true";
    let query = ops::Command::new(["sh", "-c", script]).changed_when(ops::ChangedWhen::Never);
    let out = t.call(ops::command, (query, Mode::Apply)).unwrap();
    let out = out.output.expect("a command's output");
    out.stdout.lines().map(str::to_owned).collect()
}

/// cs-dnf without the test packages, for this test alone.
fn bare() -> (MutexGuard<'static, ()>, Tunnel) {
    let one = crate::system_state();
    let t = connect("cs-dnf");
    let gone = Package::new(["cs-tool", "cs-hello"]).absent();
    package(&t, gone, Mode::Apply).unwrap();
    (one, t)
}

#[test]
fn dnf_installs_with_dependencies_upgrades_and_removes_with_dependents() {
    let (_one, t) = bare();
    let state = || rpm_q(&t);
    assert_eq!(
        state(),
        [
            "package cs-hello is not installed",
            "package cs-tool is not installed"
        ]
    );

    let tool = |m| package(&t, Package::new(["cs-tool"]), m);
    let added = check_then_apply(&state, &tool);
    assert_eq!(
        added.summary,
        "packages: install cs-tool 1.0-1, install cs-hello 1.1-1 (dependency)"
    );
    assert_eq!(state(), ["cs-hello-1.1-1.noarch", "cs-tool-1.0-1.noarch"]);
    let again = tool(Mode::Apply).unwrap();
    assert_eq!(again.summary, "packages installed: cs-tool 1.0-1");

    // Removing a package takes its dependents along, and the plan says so.
    let gone = |m| package(&t, Package::new(["cs-hello"]).absent(), m);
    let removed = check_then_apply(&state, &gone);
    assert_eq!(
        removed.summary,
        "packages: remove cs-hello 1.1-1, remove cs-tool 1.0-1 (dependency)"
    );
    assert_eq!(
        state(),
        [
            "package cs-hello is not installed",
            "package cs-tool is not installed"
        ]
    );

    // An older version is enough for "present", not for "latest" (the
    // operation takes no versions: 1.0 comes from dnf itself).
    let old = ops::Command::new(["dnf", "install", "-y", "-q", "cs-hello-1.0"])
        .unless(["rpm", "-q", "cs-hello"]);
    t.call(ops::command, (old.clone(), Mode::Apply)).unwrap();
    let present = package(&t, Package::new(["cs-hello"]), Mode::Apply).unwrap();
    assert_eq!(
        (present.changed, present.summary.as_str()),
        (false, "packages installed: cs-hello 1.0-1")
    );
    let latest = |m| package(&t, Package::new(["cs-hello"]).latest(), m);
    let upgraded = check_then_apply(&state, &latest);
    assert_eq!(
        upgraded.summary,
        "packages: upgrade cs-hello 1.0-1 -> 1.1-1"
    );
    assert_eq!(state()[0], "cs-hello-1.1-1.noarch");

    // latest of a missing package and an old one: one transaction that
    // installs the one and upgrades the other.
    package(&t, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();
    t.call(ops::command, (old.clone(), Mode::Apply)).unwrap();
    let mixed = |m| package(&t, Package::new(["cs-hello", "cs-tool"]).latest(), m);
    let done = check_then_apply(&state, &mixed);
    assert_eq!(
        done.summary,
        "packages: install cs-tool 1.0-1, upgrade cs-hello 1.0-1 -> 1.1-1"
    );
    assert_eq!(state(), ["cs-hello-1.1-1.noarch", "cs-tool-1.0-1.noarch"]);
    assert!(!mixed(Mode::Apply).unwrap().changed);
    package(&t, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();

    // latest of a missing package installs it, with its dependencies up
    // to date; update_cache refreshes the metadata on apply only, and
    // check mode says its plan comes before that.
    let both = Package::new(["cs-tool"]).latest().update_cache();
    let checked = package(&t, both.clone(), Mode::Check).unwrap();
    assert_eq!(
        checked.summary,
        "packages: install cs-tool 1.0-1, install cs-hello 1.1-1 (dependency) \
         (planned before update_cache() refreshes the package lists)"
    );
    let applied = package(&t, both.clone(), Mode::Apply).unwrap();
    assert_eq!(
        (applied.changed, applied.summary.as_str()),
        (
            true,
            "packages: install cs-tool 1.0-1, install cs-hello 1.1-1 (dependency)"
        )
    );
    // Package::plan() honours update_cache: it plans, then its apply step
    // refreshes (and plans again: the same).
    let planned = t.call(planned_package, (both, Mode::Apply)).unwrap();
    assert_eq!(
        (planned.changed, planned.summary.as_str()),
        (
            false,
            "packages up to date: cs-tool 1.0-1 \
             (planned before update_cache() refreshes the package lists)"
        )
    );
    package(&t, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();
    assert_eq!(
        state(),
        [
            "package cs-hello is not installed",
            "package cs-tool is not installed"
        ]
    );
}

#[test]
fn dnf_errors_name_host_package_and_what_to_do() {
    let (_one, t) = bare();
    for m in [Mode::Check, Mode::Apply] {
        let err = package(&t, Package::new(["cs-hello", "cs-nope"]), m).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Remote { .. }), "{err:?}");
        assert!(
            text.starts_with("cs-dnf: ")
                && text.contains("ops::package cs-hello, cs-nope: ")
                && text.contains("Unable to find a match: cs-nope")
                && text.contains("update_cache()"),
            "{text}"
        );
    }
    for bad in ["--setopt=x=1", "@core", "cs-*", "/usr/bin/cs-tool"] {
        let err = package(&t, Package::new([bad]), Mode::Check).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("ops::package {bad}: not a package name")),
            "{err}"
        );
    }
    assert_eq!(
        rpm_q(&t),
        [
            "package cs-hello is not installed",
            "package cs-tool is not installed"
        ],
        "an error installed something"
    );
}

/// Runs `script` on the host as a command (as root).
fn sh(t: &Tunnel, script: &str) {
    let run = ops::Command::new(["sh", "-c", script]).changed_when(ops::ChangedWhen::Never);
    t.call(ops::command, (run, Mode::Apply)).unwrap();
}

/// dnf's metadata cache, put back (`dnf makecache`) when a test that
/// removed it ends, however it ends.
struct CacheBack<'t>(&'t Tunnel);

impl Drop for CacheBack<'_> {
    fn drop(&mut self) {
        sh(self.0, "dnf -q makecache");
    }
}

#[test]
fn dnf_without_a_metadata_cache_plans_after_update_cache_in_apply_mode() {
    let (_one, t) = bare();
    let _back = CacheBack(&t);
    // A host whose cache was never made. `dnf clean all` alone is not
    // that: it sometimes leaves a repository's repodata behind, and dnf
    // then plans from it.
    sh(&t, "dnf -q clean all && rm -rf /var/cache/dnf/*");
    let fresh = Package::new(["cs-hello"]).update_cache();

    // Check mode (and Package::plan) plan before the refresh, from a
    // cache there is not: the error says what to do, and it is not
    // "add update_cache()".
    let err = package(&t, fresh.clone(), Mode::Check).unwrap_err();
    let planned = t.call(planned_package, (fresh.clone(), Mode::Check));
    for text in [err.to_string(), planned.unwrap_err().to_string()] {
        assert!(
            text.contains("ops::package cs-hello: ")
                && text.contains("Cache-only enabled but no cache")
                && text.contains("run in apply mode (it refreshes first)")
                && text.contains("run `dnf makecache` once")
                && !text.contains("add update_cache()"),
            "{text}"
        );
    }
    assert_eq!(rpm_q(&t)[0], "package cs-hello is not installed");

    // Apply refreshes first, then plans: it works, and says nothing of
    // check mode.
    let applied = package(&t, fresh.clone(), Mode::Apply).unwrap();
    assert_eq!(
        (applied.changed, applied.summary.as_str()),
        (true, "packages: install cs-hello 1.1-1")
    );
    assert_eq!(rpm_q(&t)[0], "cs-hello-1.1-1.noarch");
    package(&t, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();
}

#[test]
fn dnf_does_not_wait_for_another_dnf_and_says_to_try_again() {
    let (_one, t) = bare();
    // Another dnf, as its lock file says: a live process's pid.
    let lock = "/var/cache/dnf/metadata_lock.pid";
    sh(
        &t,
        &format!("sleep 60 >/dev/null 2>&1 </dev/null & echo $! >{lock}"),
    );
    let held = [Mode::Check, Mode::Apply].map(|m| package(&t, Package::new(["cs-hello"]), m));
    sh(&t, &format!("kill $(cat {lock}); rm -f {lock}"));
    for err in held {
        let text = err.unwrap_err().to_string();
        assert!(
            text.contains("another package manager holds the lock")
                && text.contains("try again when it is done")
                && !text.contains("timeout"),
            "{text}"
        );
    }
    assert_eq!(rpm_q(&t)[0], "package cs-hello is not installed");
}
