//! The kit's reporting as a new user's tool meets it (`kit_tool`): any
//! step is reported (transfers too), this machine is a host (`-H local`),
//! each host connects once before the steps, a plan's steps after its
//! failure show as skipped, `--help` shows the host syntax, and the
//! progress line is drawn on a terminal and silenced by `-q`.

use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chopsticks_tests::*;
use serde_json::Value;

use crate::cli::{scratch, ToolRun};

fn kit_tool(args: &[&str], state: &Path) -> ToolRun {
    ToolRun::of(
        Command::new(env!("CARGO_BIN_EXE_kit_tool"))
            .arg("-F")
            .arg(test_ssh_config())
            .args(args)
            .env("XDG_STATE_HOME", state),
    )
}

/// `--dir DIR/hosts --here DIR/here` of a scratch directory `dir`.
fn dirs(dir: &Path) -> [String; 4] {
    std::fs::create_dir_all(dir.join("hosts")).unwrap();
    [
        "--dir".into(),
        dir.join("hosts").to_str().unwrap().into(),
        "--here".into(),
        dir.join("here").to_str().unwrap().into(),
    ]
}

fn args<'a>(dirs: &'a [String; 4], more: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = dirs.iter().map(String::as_str).collect();
    all.extend(more);
    all
}

/// The lines of stdout about `host` before the recap (the recap's own
/// line has ` ok=`).
fn lines_of<'a>(run: &'a ToolRun, host: &str) -> Vec<&'a str> {
    run.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(host) && !l.contains(" ok="))
        .collect()
}

/// `host`'s recap line, its blanks squeezed.
fn recap(run: &ToolRun, host: &str) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")) && l.contains(" ok="))
        .unwrap_or_else(|| panic!("no recap line for {host}: {}", run.text()));
    line.split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_objects(run: &ToolRun) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A put and a fetch are steps like any other: their lines, `changed`
/// counted in the recap, their `--json` objects, `-q`; a fetch's
/// transfers made into their sizes with `GroupResult::map`.
#[test]
fn transfers_and_mapped_results_are_steps_like_any_other() {
    let dir = scratch("kit-transfers");
    let d = dirs(&dir);
    let run = kit_tool(&args(&d, &["-H", "cs-local"]), &dir);
    assert_eq!(run.code, 0, "{}", run.text());
    let put = format!("{}/put.txt: 5 bytes sent", d[1]);
    assert!(
        run.stdout
            .contains(&format!("changed     cs-local  put: {put}")),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("ok          cs-local  fetch: 5\n"),
        "{}",
        run.text()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("here/cs-local/put.txt")).unwrap(),
        "hello"
    );
    // put, fetch, three files, kernel: six operations, four changed.
    assert_eq!(
        recap(&run, "cs-local"),
        "ok=6 changed=4 unreachable=0 failed=0 skipped=0"
    );
    // Again: the put is up to date, and says so.
    let run = kit_tool(&args(&d, &["-H", "cs-local"]), &dir);
    assert_eq!(run.code, 0, "{}", run.text());
    let put = format!("{}/put.txt: up to date", d[1]);
    assert!(
        run.stdout
            .contains(&format!("ok          cs-local  put: {put}")),
        "{}",
        run.text()
    );
    assert_eq!(
        recap(&run, "cs-local"),
        "ok=6 changed=0 unreachable=0 failed=0 skipped=0"
    );
    // --json: the transfer as a value, its status from `changed`.
    let run = kit_tool(
        &args(&d, &["-H", "cs-local", "--json", "--content", "bonjour"]),
        &dir,
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let objects = json_objects(&run);
    let put = objects.iter().find(|o| o["step"] == "put").unwrap();
    assert_eq!(put["status"], "changed", "{put}");
    assert_eq!(put["value"]["bytes"], 7, "{put}");
    assert_eq!(put["value"]["changed"], true, "{put}");
    let fetch = objects.iter().find(|o| o["step"] == "fetch").unwrap();
    assert_eq!(
        (&fetch["status"], &fetch["value"]),
        (&"ok".into(), &7.into())
    );
    // -q: nothing but the recap.
    let run = kit_tool(&args(&d, &["-H", "cs-local", "-q"]), &dir);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(lines_of(&run, "cs-local").is_empty(), "{}", run.text());
    assert_eq!(
        recap(&run, "cs-local"),
        "ok=6 changed=1 unreachable=0 failed=0 skipped=0"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A plan's steps after its failure show as skipped: a line each, counted
/// in the recap, named in `--json`, kept by the journal and in JUnit as
/// skipped test cases.
#[test]
fn steps_after_a_failure_show_as_skipped_everywhere() {
    let dir = scratch("kit-skipped");
    let d = dirs(&dir);
    let junit = dir.join("junit.xml");
    let junit_arg = junit.to_str().unwrap();
    let run = kit_tool(
        &args(&d, &["-H", "cs-local", "--fail", "--junit", junit_arg]),
        &dir,
    );
    assert_eq!(run.code, 2, "{}", run.text());
    let lines = lines_of(&run, "cs-local");
    let plan: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("plan/"))
        .collect();
    assert_eq!(plan.len(), 3, "{}", run.text());
    assert!(plan[0].starts_with("changed     cs-local  plan/first: create "));
    assert_eq!(
        plan[1],
        "failed      cs-local  plan/second: kit_tool second: fails on purpose"
    );
    assert_eq!(
        plan[2],
        "skipped     cs-local  plan/third: not run, plan/second failed"
    );
    assert_eq!(
        recap(&run, "cs-local"),
        "ok=4 changed=2 unreachable=0 failed=1 skipped=1"
    );
    // JUnit: the skipped step is a skipped test case.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let third = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("plan/third"))
        .unwrap_or_else(|| panic!("no plan/third: {xml}"));
    let skipped = third.children().find(|n| n.has_tag_name("skipped"));
    assert_eq!(
        skipped.and_then(|s| s.attribute("message")),
        Some("skipped: not run, plan/second failed"),
        "{xml}"
    );
    // The journal keeps it, and --history shows it.
    let history = Command::new(env!("CARGO_BIN_EXE_kit_tool"))
        .args([
            "--dir",
            "x",
            "--here",
            "x",
            "--history",
            "cs-local",
            "--json",
        ])
        .env("XDG_STATE_HOME", &dir)
        .output()
        .unwrap();
    let records = String::from_utf8_lossy(&history.stdout);
    let last: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    let third = last["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "plan/third")
        .unwrap_or_else(|| panic!("{last}"));
    assert_eq!(third["status"], "skipped", "{third}");
    // --json: the plan's value names the skipped step.
    let run = kit_tool(&args(&d, &["-H", "cs-local", "--fail", "--json"]), &dir);
    assert_eq!(run.code, 2, "{}", run.text());
    let objects = json_objects(&run);
    let plan = objects.iter().find(|o| o["step"] == "plan").unwrap();
    assert_eq!(plan["status"], "failed", "{plan}");
    assert_eq!(
        plan["value"]["skipped"],
        serde_json::json!(["third"]),
        "{plan}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Each host connects once, before the first step: a dead host is
/// reported once (step `(connect)`), the steps are not given it, the
/// recap counts it unreachable, the retry file lists it, `--json` and
/// JUnit have one record of it.
#[test]
fn a_dead_host_is_reported_once_and_the_steps_skip_it() {
    let dir = scratch("kit-connect");
    let d = dirs(&dir);
    let junit = dir.join("junit.xml");
    let retry = dir.join("retry");
    let run = kit_tool(
        &args(
            &d,
            &[
                "-H",
                "cs-refused,cs-local",
                "--junit",
                junit.to_str().unwrap(),
                "--retry-file",
                retry.to_str().unwrap(),
            ],
        ),
        &dir,
    );
    assert_eq!(run.code, 4, "{}", run.text());
    let dead = lines_of(&run, "cs-refused");
    assert_eq!(dead.len(), 1, "{}", run.text());
    assert!(
        dead[0].starts_with("unreachable cs-refused  (connect): cs-refused: ssh could not connect"),
        "{}",
        run.text()
    );
    for step in ["put", "fetch", "plan", "kernel"] {
        assert!(
            run.stderr.contains(&format!("step {step} on cs-local\n")),
            "{step} was given another host than cs-local: {}",
            run.text()
        );
    }
    assert_eq!(lines_of(&run, "cs-local").len(), 6, "{}", run.text());
    assert_eq!(
        recap(&run, "cs-refused"),
        "ok=0 changed=0 unreachable=1 failed=0 skipped=0"
    );
    // The recap keeps the selection's order.
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" ok="))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["cs-refused", "cs-local"], "{}", run.text());
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "cs-refused\n");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let dead: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.attribute("classname") == Some("cs-refused"))
        .collect();
    assert_eq!(dead.len(), 1, "{xml}");
    assert_eq!(dead[0].attribute("name"), Some("(connect)"), "{xml}");
    let error = dead[0].children().find(|n| n.has_tag_name("error"));
    assert_eq!(
        error.and_then(|e| e.attribute("type")),
        Some("unreachable"),
        "{xml}"
    );
    // --json: one object for the dead host.
    let run = kit_tool(&args(&d, &["-H", "cs-refused,cs-local", "--json"]), &dir);
    assert_eq!(run.code, 4, "{}", run.text());
    let objects = json_objects(&run);
    let dead: Vec<&Value> = objects
        .iter()
        .filter(|o| o["host"] == "cs-refused")
        .collect();
    assert_eq!(dead.len(), 1, "{}", run.text());
    assert_eq!(
        (&dead[0]["step"], &dead[0]["status"]),
        (&"(connect)".into(), &"unreachable".into())
    );
    // No host reachable: no step runs.
    let run = kit_tool(&args(&d, &["-H", "cs-refused"]), &dir);
    assert_eq!(run.code, 4, "{}", run.text());
    assert!(!run.stderr.contains("step "), "{}", run.text());
    std::fs::remove_dir_all(dir).unwrap();
}

/// `-H local`, and `localhost` where no inventory defines it, is this
/// machine through a local tunnel (no ssh: the ssh config given makes
/// every ssh connection fail); an inventory's own localhost is reached as
/// it says. Without any host, the error says how to name one.
#[test]
fn local_names_this_machine_without_ssh() {
    let dir = scratch("kit-local");
    let d = dirs(&dir);
    let no_ssh = dir.join("no_ssh_config");
    std::fs::write(
        &no_ssh,
        "Host *\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 5\n",
    )
    .unwrap();
    let run_with = |more: &[&str]| {
        ToolRun::of(
            Command::new(env!("CARGO_BIN_EXE_kit_tool"))
                .arg("-F")
                .arg(&no_ssh)
                .args(args(&d, more))
                .env("XDG_STATE_HOME", &dir),
        )
    };
    for name in ["local", "localhost"] {
        let run = run_with(&["-H", name]);
        assert_eq!(run.code, 0, "{name}: {}", run.text());
        let line = recap(&run, name);
        assert!(
            line.starts_with("ok=6 ") && line.ends_with(" unreachable=0 failed=0 skipped=0"),
            "{name}: {}",
            run.text()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("here/{name}/put.txt"))).unwrap(),
            "hello"
        );
    }
    // An inventory's localhost is its own: here, ssh to a dead port.
    let inventory = dir.join("hosts.ini");
    std::fs::write(&inventory, "localhost ansible_port=1\n").unwrap();
    let run = run_with(&["-i", inventory.to_str().unwrap(), "-H", "localhost"]);
    assert_eq!(run.code, 4, "{}", run.text());
    let run = run_with(&[]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains(
            "no hosts: give -H HOSTS or -i INVENTORY (-H local for this machine, without ssh)"
        ),
        "{}",
        run.text()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--help` says how hosts are written, not only the README.
#[test]
fn help_shows_the_host_syntax() {
    let out = Command::new(env!("CARGO_BIN_EXE_kit_tool"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for syntax in [
        "web[01:20].example",
        "[0:10:5]",
        "docker:NAME",
        "local ",
        "localhost",
        "-l @FILE",
    ] {
        assert!(help.contains(syntax), "{syntax}: {help}");
    }
    // -h: one line, pointing at --help.
    let out = Command::new(env!("CARGO_BIN_EXE_kit_tool"))
        .arg("-h")
        .output()
        .unwrap();
    let short = String::from_utf8_lossy(&out.stdout);
    assert!(
        short.contains("web1,web[01:20].example, docker:NAME, local (--help: the syntax)"),
        "{short}"
    );
}

/// What `command` writes to its stderr when that is a terminal (a
/// pseudo-terminal whose other end this test reads), with its stdout
/// piped; and its exit code.
fn on_a_terminal(command: &mut Command) -> (i32, String) {
    let (mut master, mut slave) = (0, 0);
    let made = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, slave] {
        // Not inherited by the processes other tests start meanwhile.
        assert_eq!(
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) },
            0
        );
    }
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The command's copy of the terminal is its only one now.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        let mut master = std::fs::File::from(master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once no process has the terminal open.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    (code, text)
}

/// On a terminal, and by default (`--color auto`), the progress line is
/// drawn on stderr as the hosts connect and work; `-q` draws none.
#[test]
fn the_progress_line_is_drawn_on_a_terminal_and_quiet_silences_it() {
    let dir = scratch("kit-progress");
    let d = dirs(&dir);
    let tool = |more: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kit_tool"));
        command
            .arg("-F")
            .arg(test_ssh_config())
            .args(args(&d, &["-H", "cs-local,local"]))
            .args(more)
            .env("XDG_STATE_HOME", &dir)
            .env_remove("NO_COLOR");
        on_a_terminal(&mut command)
    };
    let (code, terminal) = tool(&[]);
    assert_eq!(code, 0, "{terminal}");
    for drawn in ["\r\x1b[2Kconnecting [2/2] 2 ok, 0 failed", "\r\x1b[2K"] {
        assert!(terminal.contains(drawn), "{drawn:?} not in {terminal:?}");
    }
    assert!(
        terminal.contains("[2/2] 2 ok, 0 failed"),
        "a call's progress: {terminal:?}"
    );
    let (code, terminal) = tool(&["-q"]);
    assert_eq!(code, 0, "{terminal}");
    assert!(!terminal.contains('\x1b'), "-q drew: {terminal:?}");
    assert!(
        terminal.contains("step put on cs-local,local"),
        "{terminal:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
