//! Package and service operations against real Debian containers: apt with
//! the local repository of the test images (cs-deb12), systemd as PID 1
//! (cs-systemd). Check mode changes neither the package database nor a
//! unit's state and says what apply then does; apply settles.

use std::fmt::Debug;
use std::sync::MutexGuard;
use std::time::Duration;

use chopsticks::facts::{self, Fact};
use chopsticks::ops::{self, Change, Mode, Package, Service};
use chopsticks::{Error, Tunnel};
use chopsticks_tests::*;

fn builder(alias: &str) -> chopsticks::TunnelBuilder {
    Tunnel::builder(alias)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20))
        .call_timeout(Duration::from_secs(180))
}

fn connect(alias: &str) -> Tunnel {
    builder(alias)
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {alias}: {e}"))
}

/// Runs `step` in check mode and asserts that `state` (what the host has)
/// did not change and that apply then reports the same change; asserts
/// that a second apply changes nothing; returns apply's change.
pub(crate) fn check_then_apply<S: PartialEq + Debug>(
    state: &dyn Fn() -> S,
    step: &dyn Fn(Mode) -> chopsticks::Result<Change>,
) -> Change {
    let before = state();
    let check = step(Mode::Check).unwrap();
    assert_eq!(state(), before, "check mode changed the host: {check:?}");
    let apply = step(Mode::Apply).unwrap();
    assert_eq!(check, apply, "check mode said otherwise than apply did");
    let again = step(Mode::Apply).unwrap();
    assert!(
        !again.changed,
        "a second apply changed something: {again:?}"
    );
    assert_eq!(step(Mode::Check).unwrap(), again);
    apply
}

fn installed(t: &Tunnel) -> Vec<(String, String)> {
    match t.call(facts::packages, ()).unwrap() {
        Fact::Known(p) => p
            .installed
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect(),
        Fact::NotAvailable(why) => panic!("no package database: {why}"),
    }
}

fn version_of(t: &Tunnel, name: &str) -> Option<String> {
    installed(t)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn package(t: &Tunnel, spec: Package, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::package, (spec, mode))
}

/// cs-deb12 without the test packages, for this test alone.
fn bare_deb12() -> (MutexGuard<'static, ()>, Tunnel) {
    let one = crate::system_state();
    let t = connect("cs-deb12");
    let gone = Package::new(["cs-tool", "cs-hello"]).absent();
    package(&t, gone, Mode::Apply).unwrap();
    (one, t)
}

#[test]
fn packages_install_with_dependencies_upgrade_and_remove_with_dependents() {
    let (_one, t) = bare_deb12();
    let state = || installed(&t);

    let tool = |m| package(&t, Package::new(["cs-tool"]), m);
    let added = check_then_apply(&state, &tool);
    assert_eq!(
        added.summary,
        "packages: install cs-hello 1.1 (dependency), install cs-tool 1.0"
    );
    assert_eq!(version_of(&t, "cs-tool").as_deref(), Some("1.0"));
    let again = tool(Mode::Apply).unwrap();
    assert_eq!(again.summary, "packages installed: cs-tool 1.0");

    // Removing a package takes its dependents along, and the plan says so.
    let gone = |m| package(&t, Package::new(["cs-hello"]).absent(), m);
    let removed = check_then_apply(&state, &gone);
    assert_eq!(
        removed.summary,
        "packages: remove cs-tool 1.0 (dependency), remove cs-hello 1.1"
    );
    assert_eq!(version_of(&t, "cs-tool"), None);

    // An older version is enough for "present", not for "latest".
    let old = ops::Command::new(["apt-get", "install", "-y", "-q", "cs-hello=1.0"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .unless(["dpkg-query", "-W", "cs-hello"]);
    t.call(ops::command, (old, Mode::Apply)).unwrap();
    let present = package(&t, Package::new(["cs-hello"]), Mode::Apply).unwrap();
    assert_eq!(
        (present.changed, present.summary.as_str()),
        (false, "packages installed: cs-hello 1.0")
    );
    let latest = |m| package(&t, Package::new(["cs-hello"]).latest(), m);
    let upgraded = check_then_apply(&state, &latest);
    assert_eq!(upgraded.summary, "packages: upgrade cs-hello 1.0 -> 1.1");
    assert_eq!(version_of(&t, "cs-hello").as_deref(), Some("1.1"));

    // update_cache refreshes the lists on apply only, and is no change.
    let fresh = Package::new(["cs-hello"]).latest().update_cache();
    let checked = package(&t, fresh.clone(), Mode::Check).unwrap();
    assert!(!checked.changed, "{checked:?}");
    assert!(
        checked
            .summary
            .ends_with("(planned before update_cache() refreshes the package lists)"),
        "{checked:?}"
    );
    let applied = package(&t, fresh, Mode::Apply).unwrap();
    assert_eq!(
        (applied.changed, applied.summary.as_str()),
        (false, "packages up to date: cs-hello 1.1")
    );
    package(&t, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();
}

#[test]
fn package_errors_name_host_package_and_what_to_do() {
    let (_one, t) = bare_deb12();
    for m in [Mode::Check, Mode::Apply] {
        let err = package(&t, Package::new(["cs-hello", "cs-nope"]), m).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Remote { .. }), "{err:?}");
        assert!(
            text.starts_with("cs-deb12: ")
                && text.contains("ops::package cs-hello, cs-nope: ")
                && text.contains("Unable to locate package cs-nope")
                && text.contains("update_cache()"),
            "{text}"
        );
    }
    let err = package(&t, Package::new(["--force-yes"]), Mode::Check).unwrap_err();
    assert!(
        err.to_string()
            .contains("ops::package --force-yes: not a package name"),
        "{err}"
    );
    assert_eq!(
        version_of(&t, "cs-hello"),
        None,
        "an error installed something"
    );

    // A user without root can plan, not apply; through sudo it can.
    let deploy = connect("cs-deb12-deploy");
    let planned = package(&deploy, Package::new(["cs-hello"]), Mode::Check).unwrap();
    assert_eq!(planned.summary, "packages: install cs-hello 1.1");
    let err = package(&deploy, Package::new(["cs-hello"]), Mode::Apply).unwrap_err();
    assert!(
        err.to_string().contains("changing packages needs root"),
        "{err}"
    );
    let root = builder("cs-deb12-deploy").sudo("root").connect().unwrap();
    let applied = package(&root, Package::new(["cs-hello"]), Mode::Apply).unwrap();
    assert_eq!(applied, planned);
    package(&root, Package::new(["cs-hello"]).absent(), Mode::Apply).unwrap();
}

/// cs-hello's state as systemd reports it, and its log of starts and reloads.
fn unit_state(t: &Tunnel) -> (facts::ServiceState, Vec<String>) {
    let unit = t
        .call(facts::service, ("cs-hello".to_owned(),))
        .unwrap()
        .known()
        .expect("cs-systemd runs systemd");
    (unit, log_events(t))
}

/// The events cs-hello logged: `start` or `reload` with its config.
fn log_events(t: &Tunnel) -> Vec<String> {
    let log = t
        .call(read_file, ("/var/log/cs-hello.log".to_owned(),))
        .unwrap_or_default();
    log.lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect()
}

/// The log's events once there are more than `seen`, or after 10 s: the
/// daemon logs a start or a reload a moment after `systemctl` returned (a
/// simple unit counts as started once forked; a reload is a signal).
fn events_after(t: &Tunnel, seen: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = log_events(t);
        if events.len() > seen || std::time::Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn service(t: &Tunnel, spec: Service, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::service, (spec, mode))
}

#[test]
fn services_start_enable_restart_reload_and_stop_under_systemd() {
    let _one = crate::system_state();
    let t = connect("cs-systemd");
    // A known start: installed, stopped, disabled, no drop-in, no config
    // (the deploy example leaves one), empty log.
    package(&t, Package::new(["cs-hello"]), Mode::Apply).unwrap();
    t.call(
        ops::file,
        (ops::File::new("/etc/cs-hello.conf").absent(), Mode::Apply),
    )
    .unwrap();
    let dropin = "/etc/systemd/system/cs-hello.service.d";
    // systemd looks for drop-ins in the directories it saw when it loaded
    // the unit: an empty one, then daemon-reload.
    t.call(
        ops::directory,
        (ops::Directory::new(dropin).absent(), Mode::Apply),
    )
    .unwrap();
    t.call(ops::directory, (ops::Directory::new(dropin), Mode::Apply))
        .unwrap();
    t.call(
        ops::command,
        (
            ops::Command::new(["systemctl", "daemon-reload"])
                .changed_when(ops::ChangedWhen::Always),
            Mode::Apply,
        ),
    )
    .unwrap();
    service(
        &t,
        Service::new("cs-hello").stopped().enabled(false),
        Mode::Apply,
    )
    .unwrap();
    t.call(
        ops::file,
        (
            ops::File::new("/var/log/cs-hello.log").content(""),
            Mode::Apply,
        ),
    )
    .unwrap();
    let state = || unit_state(&t);

    let up = |m| service(&t, Service::new("cs-hello").running().enabled(true), m);
    let started = check_then_apply(&state, &up);
    assert_eq!(
        started.summary,
        "service cs-hello: enable, start (was inactive)"
    );
    let (unit, _) = unit_state(&t);
    assert_eq!(
        (unit.active.as_str(), unit.enabled.as_str()),
        ("active", "enabled")
    );
    assert_eq!(events_after(&t, 0), ["start version=1.1 config="]);
    let settled = up(Mode::Apply).unwrap();
    assert_eq!(
        settled.summary,
        "service cs-hello: active (running), enabled"
    );

    // Restarted and reloaded always change; check mode does neither.
    for (spec, event) in [
        (Service::new("cs-hello").restarted(), "start"),
        (Service::new("cs-hello").reloaded(), "reload"),
    ] {
        let before = unit_state(&t);
        let check = service(&t, spec.clone(), Mode::Check).unwrap();
        assert_eq!(unit_state(&t), before, "check mode touched the unit");
        let apply = service(&t, spec, Mode::Apply).unwrap();
        assert_eq!(check, apply);
        assert!(apply.changed, "{apply:?}");
        let events = events_after(&t, before.1.len());
        assert_eq!(events.len(), before.1.len() + 1, "{events:?}");
        assert!(events.last().unwrap().starts_with(event), "{events:?}");
    }

    // A changed unit file is picked up with daemon-reload, once.
    t.call(
        ops::file,
        (
            ops::File::new(format!("{dropin}/cs.conf"))
                .content("[Service]\nEnvironment=CS_TEST=1\n"),
            Mode::Apply,
        ),
    )
    .unwrap();
    let reloaded = check_then_apply(&state, &up);
    assert_eq!(reloaded.summary, "service cs-hello: daemon-reload");

    let down = |m| service(&t, Service::new("cs-hello").stopped().enabled(false), m);
    let stopped = check_then_apply(&state, &down);
    assert_eq!(stopped.summary, "service cs-hello: disable, stop");
    t.call(
        ops::directory,
        (ops::Directory::new(dropin).absent(), Mode::Apply),
    )
    .unwrap();
}

#[test]
fn service_errors_name_host_unit_and_what_to_do() {
    let _one = crate::system_state();
    let t = connect("cs-systemd");
    // A unit an earlier step would install is noted in check mode, and
    // refused by apply while it is missing.
    let spec = Service::new("cs-nope").running();
    let noted = service(&t, spec.clone(), Mode::Check).unwrap();
    assert!(
        noted.changed && noted.summary.contains("must exist by then"),
        "{noted:?}"
    );
    let err = service(&t, spec, Mode::Apply).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cs-systemd: ")
            && text.contains("ops::service cs-nope: ")
            && text.contains("no such unit"),
        "{text}"
    );
    let err = service(&t, Service::new("-x").running(), Mode::Check).unwrap_err();
    assert!(err.to_string().contains("not a unit name"), "{err}");

    // Where systemd does not run, the fact is "not available", not an
    // error; the operation goes through sysvinit (tests/tests/hosts/services.rs).
    let plain = connect("cs-deb12");
    let fact = plain.call(facts::service, ("ssh".to_owned(),)).unwrap();
    assert!(matches!(fact, Fact::NotAvailable(_)), "{fact:?}");
    let ssh = service(&plain, Service::new("ssh").running(), Mode::Check).unwrap();
    assert_eq!(ssh.summary, "service ssh: running, enabled");
}
