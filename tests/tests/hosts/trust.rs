//! Trust, round two, against the container hosts: nothing an inventory says
//! runs on the controller, no write follows a link someone else can swap,
//! and a dropped, timed-out or interrupted call stops on its host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::ops::{self, ChangedWhen, Mode};
use chopsticks::{Error, Tunnel};
use chopsticks_tests::*;

/// A scratch directory on this machine.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs-trust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn connect(alias: &str) -> Tunnel {
    let t = match alias {
        "local" => Tunnel::local().unwrap(),
        alias => test_host(alias).connect().unwrap(),
    };
    t.set_call_timeout(Some(Duration::from_secs(120)));
    t
}

/// Shell words ssh would hand `/bin/sh` through a `ProxyCommand`'s `%h`.
fn hostile(marker: &Path) -> Vec<String> {
    let m = marker.display();
    vec![
        format!("x$(touch {m})"),
        format!("x`touch {m}`"),
        format!("x;touch {m}"),
        format!("x';touch {m};'"),
        format!("x\";touch {m};\""),
        format!("x\\\";touch {m}"),
        format!("x touch {m}"),
    ]
}

/// A kit tool reading each inventory format whose address for a host is a
/// shell command, with an ssh config whose `ProxyCommand` substitutes `%h`
/// (and through `-J`, whose own `ProxyCommand` does): the run is refused
/// with the inventory's file and line, and nothing runs on this machine.
#[test]
fn inventory_values_never_reach_a_shell_on_the_controller() {
    let dir = scratch("inventory");
    let marker = dir.join("pwned");
    let config = dir.join("ssh_config");
    let base = std::fs::read_to_string(test_ssh_config()).unwrap();
    std::fs::write(
        &config,
        format!("Host web1\n    ProxyCommand /bin/sh -c \"exec true %h\"\n\n{base}"),
    )
    .unwrap();
    for value in hostile(&marker) {
        let quoted = serde_json::to_string(&value).unwrap();
        let inventories = [
            (
                "hosts",
                format!("[web]\nweb1 ansible_host={quoted}\n"),
                "hosts:2:",
            ),
            (
                "hosts.yml",
                format!("all:\n  hosts:\n    web1:\n      ansible_host: {quoted}\n"),
                "hosts.yml:3:",
            ),
            (
                "hosts.toml",
                format!("[hosts.web1]\naddress = {quoted}\n"),
                "hosts.toml:1:",
            ),
        ];
        for (name, text, at) in inventories {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            for jump in [None, Some("cs-jump")] {
                let mut args = vec!["-F".into(), config.display().to_string()];
                args.extend(["-i".into(), path.display().to_string()]);
                if let Some(jump) = jump {
                    args.extend(["-J".into(), jump.into()]);
                }
                let out = Command::new(env!("CARGO_BIN_EXE_inventory"))
                    .args(&args)
                    .env("XDG_STATE_HOME", &dir)
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{name} {value:?}: {stderr}");
                assert!(stderr.contains(at), "{name} {value:?}: {stderr}");
                assert!(!marker.exists(), "{name} {value:?} ran a command: {stderr}");
            }
        }
        // The library, for a program without the kit.
        let refused = [
            test_host("web1")
                .ssh_config(&config)
                .ssh_option(format!("HostName={value}")),
            test_host(&value).ssh_config(&config),
            test_host("cs-inner").proxy_jump(format!("root@{value}")),
            test_host("web1").ssh_config(&config).user(&value),
        ];
        for builder in refused {
            let err = builder.connect().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{value:?}: {err}");
        }
        thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists(), "{value:?} ran a command");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A directory of the destination swapped for a link to another
/// directory while a tree streams into it, again and again: every file
/// lands in the destination or nowhere, never through the link.
#[test]
fn a_directory_swapped_for_a_link_while_a_tree_streams_redirects_nothing() {
    for alias in ["local", "cs-deb12"] {
        let t = connect(alias);
        let swapper = connect(alias);
        let here = scratch(&format!("swap-{alias}"));
        let src = here.join("tree");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        for i in 0..40 {
            let bytes: Vec<u8> = (0..64 * 1024).map(|b| (b * 7 + i) as u8).collect();
            std::fs::write(src.join(format!("sub/f{i:02}")), bytes).unwrap();
        }
        let there = format!("/tmp/cs-trust-swap-{}-{alias}", std::process::id());
        let (dest, outside) = (format!("{there}/dest"), format!("{there}/outside"));
        t.call(remove_tree, (there.clone().into_bytes(),)).unwrap();
        let mkdirs =
            ops::Command::new(["mkdir", "-p", &dest, &outside]).changed_when(ChangedWhen::Always);
        t.call(ops::command, (mkdirs, Mode::Apply)).unwrap();
        let (mut swaps, mut rounds, mut refused) = (0, 0, 0);
        let start = Instant::now();
        while rounds < 30 && start.elapsed() < Duration::from_secs(60) {
            // The first round makes dest/sub; later ones race the swapper.
            t.call(remove_tree, (format!("{dest}/sub").into_bytes(),))
                .unwrap();
            let swapping = swapper.call_async(
                swap_dir_for_link,
                (format!("{dest}/sub"), outside.clone(), 300),
            );
            thread::sleep(Duration::from_millis(5));
            if t.put(&src, &dest).run().is_err() {
                refused += 1;
            }
            swaps += swapping.wait().unwrap();
            rounds += 1;
            let leaked = t
                .call(tree_listing, (outside.clone().into_bytes(),))
                .unwrap();
            assert!(
                leaked.len() <= 1,
                "{alias}: round {rounds}: files landed outside the destination: {leaked:?}"
            );
        }
        assert!(swaps > 0, "{alias}: the swapper never swapped");
        eprintln!("{alias}: {rounds} rounds, {swaps} swaps, {refused} puts refused");
        t.call(remove_tree, (there.into_bytes(),)).unwrap();
        std::fs::remove_dir_all(here).unwrap();
    }
}

/// ops::line and ops::file refuse a link at their path (ops::line
/// replaced it with a file before), follow it when asked, and never
/// follow a link on the way that someone else owns.
#[test]
fn content_operations_refuse_links_unless_asked_and_others_links_always() {
    let t = connect("cs-deb12");
    let dir = format!("/tmp/cs-trust-links-{}", std::process::id());
    let setup = format!(
        "set -e; rm -rf {dir}; mkdir -p {dir}/real {dir}/theirs; echo a > {dir}/real/conf; \
         ln -s real/conf {dir}/conf; chown deploy {dir}/theirs; \
         ln -s /etc {dir}/theirs/etc; chown -h deploy {dir}/theirs/etc"
    );
    let run = ops::Command::new(["sh", "-c", &setup]).changed_when(ChangedWhen::Always);
    t.call(ops::command, (run, Mode::Apply)).unwrap();
    let conf = format!("{dir}/conf");
    for mode in [Mode::Check, Mode::Apply] {
        let err = t
            .call(ops::line, (ops::Line::new(&conf, "b"), mode))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        let err = t
            .call(ops::file, (ops::File::new(&conf).content("b\n"), mode))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
    }
    let line = ops::Line::new(&conf, "b").follow(true);
    let check = t.call(ops::line, (line.clone(), Mode::Check)).unwrap();
    let apply = t.call(ops::line, (line.clone(), Mode::Apply)).unwrap();
    assert_eq!(
        (check.changed, check.summary),
        (apply.changed, apply.summary)
    );
    assert!(!t.call(ops::line, (line, Mode::Apply)).unwrap().changed);
    let real = t.call(read_file, (format!("{dir}/real/conf"),)).unwrap();
    assert_eq!(real, "a\nb\n");
    let kinds = t.call(tree_listing, (dir.clone().into_bytes(),)).unwrap();
    let link = kinds.iter().find(|e| e.0 == b"conf").unwrap();
    assert_eq!(link.1, 'l', "the link is still a link: {kinds:?}");
    let file = ops::File::new(&conf).content("c\n").follow(true);
    assert!(t.call(ops::file, (file, Mode::Apply)).unwrap().changed);
    assert_eq!(
        t.call(read_file, (format!("{dir}/real/conf"),)).unwrap(),
        "c\n"
    );
    // deploy's link to /etc: root follows it neither on the way nor asked to.
    let pwned = format!("{dir}/theirs/etc/cs-pwned");
    for spec in [
        ops::File::new(&pwned).content("x"),
        ops::File::new(&pwned).content("x").follow(true),
    ] {
        let err = t
            .call(ops::file, (spec, Mode::Apply))
            .unwrap_err()
            .to_string();
        assert!(err.contains("owned by uid"), "{err}");
    }
    let err = t
        .call(
            ops::line,
            (ops::Line::new(&pwned, "x").create(true), Mode::Apply),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("owned by uid"), "{err}");
    assert!(t.call(read_file, ("/etc/cs-pwned".into(),)).is_err());
    t.call(remove_tree, (dir.into_bytes(),)).unwrap();
}

/// A call that times out, or is dropped, is cancelled on its host: the
/// function sees `agent::cancelled`, and ops::command kills what it
/// started.
#[test]
fn timed_out_and_dropped_calls_stop_on_the_host() {
    for alias in ["local", "cs-deb12"] {
        let t = connect(alias);
        let marker = format!("cs-trust-cancel-{}-{alias}", std::process::id());
        let seen = format!("/tmp/{marker}-seen");
        let _ = t.call(remove_tree, (seen.clone().into_bytes(),));
        let err = t
            .call_async(until_cancelled, (seen.clone(), 60_000))
            .wait_timeout(Duration::from_millis(300))
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        wait_for(
            || t.call(read_file, (seen.clone(),)).is_ok(),
            "the function saw it",
        );
        t.call(remove_tree, (seen.clone().into_bytes(),)).unwrap();
        drop(t.call_async(until_cancelled, (seen.clone(), 60_000)));
        wait_for(
            || t.call(read_file, (seen.clone(),)).is_ok(),
            "a dropped call saw it",
        );
        t.call(remove_tree, (seen.into_bytes(),)).unwrap();
        // A long command, and the child it started, are killed.
        let sleep = ops::Command::new(["sh", "-c", "sleep 300; echo done"])
            .env("CS_MARKER", &marker)
            .changed_when(ChangedWhen::Always);
        let pending = t.call_async(ops::command, (sleep, Mode::Apply));
        wait_for(
            || {
                t.call(processes_mentioning, (marker.clone(),))
                    .unwrap()
                    .len()
                    >= 2
            },
            "the command started",
        );
        let err = pending
            .wait_timeout(Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        wait_for(
            || {
                t.call(processes_mentioning, (marker.clone(),))
                    .unwrap()
                    .is_empty()
            },
            "the command and its child were killed",
        );
    }
}

/// Ctrl-C in a kit tool during a group run: the calls are cancelled on
/// the hosts (nothing of the tool's is left there), the recap names the
/// interrupted hosts, and the tool exits 130; a second Ctrl-C quits at
/// once.
#[test]
fn ctrl_c_stops_a_kit_tool_and_its_work_on_every_host() {
    let hosts = ["cs-deb12", "cs-busybox"];
    // SIGTERM and SIGHUP stop the run as the first Ctrl-C does.
    let cases = [
        (libc::SIGINT, false),
        (libc::SIGINT, true),
        (libc::SIGTERM, false),
        (libc::SIGHUP, false),
    ];
    for (signal_number, twice) in cases {
        let state = scratch(&format!("ctrl-c-{signal_number}-{twice}"));
        let marker = format!(
            "cs-trust-ctrl-c-{}-{signal_number}-{twice}",
            std::process::id()
        );
        let tool = Command::new(env!("CARGO_BIN_EXE_slow_tool"))
            .args(["-F"])
            .arg(test_ssh_config())
            .args(["-H", &hosts.join(","), "--marker", &marker])
            .env("XDG_STATE_HOME", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let watchers: Vec<Tunnel> = hosts.iter().map(|h| connect(h)).collect();
        let running = || {
            watchers.iter().all(|w| {
                w.call(processes_mentioning, (marker.clone(),))
                    .is_ok_and(|p| !p.is_empty())
            })
        };
        wait_for(running, "the tool's command runs on every host");
        let signal = |tool: &std::process::Child| {
            // SAFETY: signals a child this test started.
            unsafe { libc::kill(tool.id() as libc::pid_t, signal_number) };
        };
        let start = Instant::now();
        signal(&tool);
        if twice {
            thread::sleep(Duration::from_millis(20));
            signal(&tool);
        }
        let out = wait_output(tool, Duration::from_secs(30));
        let (stdout, stderr) = (out.0, out.1);
        assert_eq!(out.2, Some(130), "--- stdout\n{stdout}--- stderr\n{stderr}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            start.elapsed()
        );
        if !twice {
            for host in hosts {
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(host) && l.contains("ok="));
                let line = line.unwrap_or_else(|| panic!("no recap of {host}: {stdout}"));
                assert!(line.contains("(interrupted)"), "{line}");
            }
        }
        // The run journal: one Ctrl-C ends the run through its recap, so
        // its record is kept (exit 130, the steps interrupted); a second
        // quits at once, leaving a whole record (when the run had ended
        // already) or none, never half of one.
        let journal = state.join("chopsticks/slow_tool/journal.jsonl");
        let records = std::fs::read_to_string(&journal).unwrap_or_default();
        let records: Vec<serde_json::Value> = records
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        match twice {
            false => assert_eq!(records.len(), 1, "{records:?}"),
            true => assert!(records.len() <= 1, "{records:?}"),
        }
        // Quitting at once says so.
        let unjournaled = stderr.contains("this run is not journaled");
        assert_eq!(unjournaled, twice && records.is_empty(), "{stderr}");
        for record in &records {
            assert_eq!(record["exit"], 130, "{record}");
            let statuses: Vec<&str> = record["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["status"].as_str().unwrap())
                .collect();
            assert_eq!(statuses, ["interrupted", "interrupted"], "{record}");
        }
        // Nothing of the tool's is left on the hosts: its commands, their
        // children, its agents.
        for w in &watchers {
            wait_for(
                || {
                    w.call(processes_mentioning, (marker.clone(),))
                        .unwrap()
                        .is_empty()
                },
                "the hosts' commands stopped",
            );
        }
        // (This binary's modules run their agents from one cached file:
        // any other is the tool's.)
        for w in &watchers {
            let ours = w.agent_sha256().unwrap_or_default().to_owned();
            wait_for(
                || {
                    w.call(agents_other_than, (ours.clone(),))
                        .unwrap()
                        .is_empty()
                },
                "the tool's agents exited",
            );
        }
        std::fs::remove_dir_all(state).unwrap();
    }
}

/// Polls `done` for up to 20 s.
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A child's stdout, stderr and exit code, waited for at most `bound`.
fn wait_output(mut child: std::process::Child, bound: Duration) -> (String, String, Option<i32>) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let read = |r: Option<&mut dyn std::io::Read>| {
                let mut s = String::new();
                if let Some(r) = r {
                    let _ = r.read_to_string(&mut s);
                }
                s
            };
            let stdout = read(child.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
            let stderr = read(child.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
            return (stdout, stderr, status.code());
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("the tool did not exit within {bound:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}
