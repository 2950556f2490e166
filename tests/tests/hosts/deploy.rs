//! The deploy example run as a process, as a user runs it, against
//! cs-systemd and cs-deb12: `--check --diff` previews and changes nothing,
//! a run converges, a rerun changes nothing, a config change restarts the
//! service (its handler) and nothing else, and the exit codes are the
//! recap's.

use std::process::{Command, Output};
use std::time::Duration;

use chopsticks::facts::{self, Fact};
use chopsticks::ops::{self, Mode};
use chopsticks::Tunnel;
use chopsticks_tests::*;

const HOSTS: [&str; 2] = ["cs-systemd", "cs-deb12"];

fn connect(alias: &str) -> Tunnel {
    Tunnel::builder(alias)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20))
        .call_timeout(Duration::from_secs(180))
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {alias}: {e}"))
}

fn deploy(args: &[&str]) -> (i32, String) {
    let config = test_ssh_config();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_deploy"))
        .arg("-F")
        .arg(&config)
        .args(args)
        // Failed hosts go to a retry file under here, not the user's.
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("cs-deploy-test-state"),
        )
        .output()
        .expect("the deploy example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}\n--- stderr ---\n{stderr}"),
    )
}

/// Takes away what the example makes, so each run starts from a bare host.
fn reset(t: &Tunnel, systemd: bool) {
    let apply = |r: chopsticks::Result<ops::Change>| r.unwrap();
    if systemd {
        let stop = ops::Service::new("cs-hello").stopped().enabled(false);
        apply(t.call(ops::service, (stop, Mode::Apply)));
        apply(t.call(
            ops::file,
            (
                ops::File::new("/var/log/cs-hello.log").absent(),
                Mode::Apply,
            ),
        ));
    }
    let gone = ops::Package::new(["cs-tool", "cs-hello"]).absent();
    apply(t.call(ops::package, (gone, Mode::Apply)));
    apply(t.call(
        ops::user,
        (ops::User::new("cs-hello").absent(), Mode::Apply),
    ));
    apply(t.call(
        ops::unix_group,
        (ops::UnixGroup::new("cs-hello").absent(), Mode::Apply),
    ));
    let home = ops::Directory::new("/var/lib/cs-hello").absent();
    apply(t.call(ops::directory, (home, Mode::Apply)));
    let sshd = ops::Line::new("/etc/ssh/sshd_config", "ClientAliveInterval 300")
        .matching("^ClientAliveInterval")
        .absent();
    apply(t.call(ops::line, (sshd, Mode::Apply)));
    let backups = ops::Command::new(["sh", "-c", "rm -f /etc/ssh/sshd_config.*~"])
        .changed_when(ops::ChangedWhen::Always);
    apply(t.call(ops::command, (backups, Mode::Apply)));
    let conf = ops::File::new("/etc/cs-hello.conf").absent();
    apply(t.call(ops::file, (conf, Mode::Apply)));
    // No restart left pending by an earlier run of the example.
    let pending = ops::File::new("/var/lib/chopsticks/deploy/cs-hello.handlers.json").absent();
    apply(t.call(ops::file, (pending, Mode::Apply)));
    let line = ops::Line::new("/etc/environment", "CS_HELLO_PORT=8080")
        .matching("^CS_HELLO_PORT=")
        .absent();
    apply(t.call(ops::line, (line, Mode::Apply)));
}

/// What the example changes, as seen from outside it.
fn host_state(t: &Tunnel) -> (bool, bool, Option<String>, String) {
    let installed = match t.call(facts::packages, ()).unwrap() {
        Fact::Known(p) => p.installed.iter().any(|p| p.name == "cs-hello"),
        Fact::NotAvailable(why) => panic!("{why}"),
    };
    let users = t.call(facts::users, ()).unwrap();
    let conf = t.call(read_file, ("/etc/cs-hello.conf".to_owned(),)).ok();
    let env = t
        .call(read_file, ("/etc/environment".to_owned(),))
        .unwrap_or_default();
    (
        installed,
        users.iter().any(|u| u.name == "cs-hello"),
        conf,
        env,
    )
}

fn recap_line(out: &str, host: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{host} ")) && l.contains("ok="))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{out}"))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The starts cs-hello logged, once there are `want` of them or 10 s
/// passed: a unit of type simple counts as started as soon as it forked,
/// so its line comes a moment after `systemctl` returned.
fn starts(t: &Tunnel, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = t
            .call(read_file, ("/var/log/cs-hello.log".to_owned(),))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" start "))
            .map(str::to_owned)
            .collect();
        if lines.len() >= want || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deploy_previews_converges_settles_and_restarts_only_on_change() {
    let _one = crate::system_state();
    let tunnels: Vec<Tunnel> = HOSTS.iter().map(|h| connect(h)).collect();
    for (t, host) in tunnels.iter().zip(HOSTS) {
        reset(t, host == "cs-systemd");
    }
    let bare: Vec<_> = tunnels.iter().map(host_state).collect();

    let both = HOSTS.join(",");
    let (code, out) = deploy(&["--check", "--diff", "-H", &both]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("check mode"), "{out}");
    assert!(
        out.contains("+greeting = \"hello from chopsticks\""),
        "{out}"
    );
    assert!(
        out.contains("cs-systemd  deploy/service: service cs-hello: enable, start"),
        "{out}"
    );
    assert!(out.contains("+CS_HELLO_PORT=8080"), "{out}");
    assert!(out.contains("+ClientAliveInterval 300"), "{out}");
    assert!(
        out.contains("validated by `/usr/sbin/sshd -t -f %s`; the old content kept as a backup"),
        "{out}"
    );
    assert!(out.contains("deploy/deploy key: "), "{out}");
    assert!(
        out.contains(
            "cs-systemd  deploy/restart cs-hello: would run, notified by config: service cs-hello: "
        ),
        "{out}"
    );
    // Everything but the service and its restart, which cs-deb12 lacks (no
    // systemd).
    assert_eq!(
        recap_line(&out, HOSTS[0]),
        "ok=9 changed=9 unreachable=0 failed=0 skipped=0",
        "{out}"
    );
    assert_eq!(
        recap_line(&out, HOSTS[1]),
        "ok=9 changed=7 unreachable=0 failed=0 skipped=0",
        "{out}"
    );
    let after: Vec<_> = tunnels.iter().map(host_state).collect();
    assert_eq!(after, bare, "--check changed a host");

    let (code, out) = deploy(&["-H", &both]);
    assert_eq!(code, 0, "{out}");
    for (i, host) in HOSTS.iter().enumerate() {
        let changed = if i == 0 { "changed=9" } else { "changed=7" };
        assert_eq!(
            recap_line(&out, host),
            format!("ok=9 {changed} unreachable=0 failed=0 skipped=0"),
            "{out}"
        );
        let (installed, user, conf, env) = host_state(&tunnels[i]);
        assert!(installed && user, "{host}: {out}");
        assert!(conf
            .unwrap()
            .contains("greeting = \"hello from chopsticks\""));
        assert!(env.lines().any(|l| l == "CS_HELLO_PORT=8080"), "{env}");
    }
    assert!(!out.contains("+greeting"), "diffs only with --diff: {out}");
    // Started by the service step, then restarted by the handler its new
    // configuration notified (as Ansible's handlers do on a first run).
    assert_eq!(starts(&tunnels[0], 2).len(), 2, "started, then restarted");

    let (code, out) = deploy(&["-H", &both]);
    assert_eq!(code, 0, "{out}");
    for host in HOSTS {
        assert_eq!(
            recap_line(&out, host),
            "ok=8 changed=0 unreachable=0 failed=0 skipped=0",
            "{out}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        starts(&tunnels[0], 2).len(),
        2,
        "no restart without a change"
    );

    // A new greeting: the file changes and the service restarts with it.
    let (code, out) = deploy(&["--greeting", "bonjour", "-H", &both]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "cs-systemd  deploy/restart cs-hello: notified by config: service cs-hello: restart"
        ),
        "{out}"
    );
    assert_eq!(
        recap_line(&out, "cs-systemd"),
        "ok=9 changed=2 unreachable=0 failed=0 skipped=0"
    );
    assert_eq!(
        recap_line(&out, "cs-deb12"),
        "ok=9 changed=1 unreachable=0 failed=0 skipped=0"
    );
    let started = starts(&tunnels[0], 3);
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(started[2].contains("greeting = \"bonjour\""), "{started:?}");
}

#[test]
fn deploy_exit_codes_follow_the_recap() {
    let _one = crate::system_state();
    // cs-busybox's apt has no package lists: the package step fails there,
    // the steps after it do not run (they show as skipped), and the exit
    // code is 2.
    let (code, out) = deploy(&["--check", "-H", "cs-busybox"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cs-busybox  deploy/package: ops::package cs-hello: ")
            && out.contains("Unable to locate package cs-hello"),
        "{out}"
    );
    let skipped = [
        "group",
        "user",
        "deploy key",
        "config",
        "sshd",
        "environment",
        "service",
    ];
    for step in skipped {
        let line =
            format!("skipped     cs-busybox  deploy/{step}: not run, deploy/package failed\n");
        assert!(out.contains(&line), "{line}{out}");
    }
    assert_eq!(
        recap_line(&out, "cs-busybox"),
        "ok=0 changed=0 unreachable=0 failed=1 skipped=7"
    );
    // A host that cannot be reached: 4.
    let (code, out) = deploy(&["--check", "-H", "cs-refused"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("unreachable cs-refused  (connect): "), "{out}");
    // Usage errors: 1.
    let (code, out) = deploy(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no hosts: give -H HOSTS or -i INVENTORY (-H local for this machine"),
        "{out}"
    );
    let (code, out) = deploy(&["--frobnicate", "-H", "cs-deb12"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("unexpected argument '--frobnicate'") && out.contains("Usage: deploy"),
        "{out}"
    );
}
