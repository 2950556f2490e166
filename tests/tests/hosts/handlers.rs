//! Handlers that are never lost, as a user meets them: the kit tool
//! `handler_tool` (tests/src/bin/handler_tool.rs) runs a plan whose step
//! `config` notifies `reload` and `restart` (declared the other way
//! round), on cs-deb12 as root and as the user deploy. A run that fails, is killed or is interrupted with
//! Ctrl-C between the notification and the handlers leaves them pending
//! in the host's state file; the next run runs them (and says why), the
//! run after does not; check mode says what would run and writes nothing;
//! a new build of the tool (another agent file on the host) finds what the
//! old build left pending.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::ops::{self, Change, Mode};
use chopsticks::{remote, Tunnel};
use chopsticks_tests::*;
use serde_json::Value;

use crate::steps::{connect, scratch};

/// The tool's name on the hosts: its executable's file name.
const TOOL: &str = "handler_tool";

/// The state file of `plan` as the documentation places it (root's under
/// `/var/lib/chopsticks`, a user's under `~/.local/state/chopsticks`),
/// read independently of the library: its text, if there is one, and the
/// modes of it and of its two directories.
#[remote]
fn handler_state(tool: String, plan: String) -> (Option<String>, Vec<u32>) {
    use std::os::unix::fs::PermissionsExt as _;
    // SAFETY: geteuid cannot fail.
    let base = match unsafe { libc::geteuid() } {
        0 => PathBuf::from("/var/lib/chopsticks"),
        _ => PathBuf::from(std::env::var("HOME").unwrap()).join(".local/state/chopsticks"),
    };
    let file = base.join(&tool).join(format!("{plan}.handlers.json"));
    let modes = [file.as_path(), &base.join(&tool), &base]
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.permissions().mode() & 0o7777)
        .collect();
    (std::fs::read_to_string(&file).ok(), modes)
}

/// The text of `path`, `None` when there is no such file.
#[remote]
fn text_if_any(path: String) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The bootstrap's cache directories of this user on this host.
fn agent_dirs() -> Vec<String> {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let home = std::env::var("HOME").unwrap_or_default();
    [
        format!("{home}/.cache"),
        "/dev/shm".into(),
        "/tmp".into(),
        "/var/tmp".into(),
    ]
    .iter()
    .map(|dir| format!("{dir}/chopsticks-{uid}"))
    .collect()
}

/// The agents cached on this host for this user (the files named by a
/// SHA-256 in the bootstrap's cache directories).
#[remote]
fn cached_agents() -> Vec<String> {
    let mut found = Vec::new();
    for dir in agent_dirs() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for name in entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                found.push(name);
            }
        }
    }
    found.sort();
    found
}

/// Removes the cached agents `hashes` of this user (with their marks).
#[remote]
fn forget_agents(hashes: Vec<String>) {
    for dir in agent_dirs() {
        for hash in &hashes {
            let _ = std::fs::remove_file(format!("{dir}/{hash}"));
            let _ = std::fs::remove_file(format!("{dir}/.{hash}.ok"));
        }
    }
}

/// One host's run of the tool: its exit code, what it printed, and the
/// plan's report (`--json`), when it printed one.
struct Run {
    code: Option<i32>,
    text: String,
    steps: Vec<(String, Change)>,
    failed: Option<String>,
    /// The failure's message (`OpError` as JSON), when a step failed.
    error: Value,
}

impl Run {
    fn of(stdout: String, stderr: String, code: Option<i32>) -> Run {
        let text = format!("exit {code:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
        let report = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|o| o["step"] == "plan" && o["value"].is_object());
        let (steps, failed, error) = match report {
            Some(o) => (
                serde_json::from_value(o["value"]["steps"].clone()).unwrap(),
                o["value"]["failed"][0].as_str().map(str::to_owned),
                o["value"]["failed"][1].clone(),
            ),
            None => (Vec::new(), None, Value::Null),
        };
        Run {
            code,
            text,
            steps,
            failed,
            error,
        }
    }

    /// Asserts that the run succeeded with the step `config` and both
    /// handlers, in order, each saying why it ran with `why` first.
    fn ran_both(&self, why: &str) {
        assert_eq!(self.code, Some(0), "{}", self.text);
        assert_eq!(
            self.names(),
            ["config", "restart", "reload"],
            "{}",
            self.text
        );
        for handler in ["restart", "reload"] {
            let summary = self.summary(handler);
            assert!(summary.starts_with(why), "{summary}");
        }
    }

    fn names(&self) -> Vec<&str> {
        self.steps.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn summary(&self, step: &str) -> &str {
        let found = self.steps.iter().find(|(n, _)| n == step);
        &found
            .unwrap_or_else(|| panic!("no step {step}: {}", self.text))
            .1
            .summary
    }
}

/// One test's plan on one host: its name, its directory, a tunnel that
/// reads what the tool left there.
struct Case {
    host: &'static str,
    plan: String,
    dir: PathBuf,
    t: Tunnel,
    state: PathBuf,
}

impl Case {
    fn new(host: &'static str, test: &str) -> Case {
        let t = connect(host);
        let plan = format!("{test}-{}", std::process::id());
        let dir = scratch(&t, &format!("handlers-{test}-{host}"));
        let state = std::env::temp_dir().join(format!("cs-handlers-{plan}"));
        std::fs::create_dir_all(&state).unwrap();
        Case {
            host,
            plan,
            dir,
            t,
            state,
        }
    }

    fn command(&self, content: &str, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_handler_tool")), content, args)
    }

    /// As [`command`](Case::command), with the tool at `exe`.
    fn command_of(&self, exe: &Path, content: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(exe);
        cmd.arg("-F")
            .arg(test_ssh_config())
            .args(["-H", self.host, "--json", "--plan", &self.plan, "--dir"])
            .arg(&self.dir)
            .args(["--content", content])
            .args(args)
            .env("XDG_STATE_HOME", &self.state);
        cmd
    }

    fn run(&self, content: &str, args: &[&str]) -> Run {
        let out = self.command(content, args).output().unwrap();
        Run::of(
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code(),
        )
    }

    /// What the handlers appended, one name a line ("" when none ran).
    fn handled(&self) -> String {
        let log = self.dir.join("handled.log").display().to_string();
        self.t
            .call(text_if_any, (log,))
            .unwrap()
            .unwrap_or_default()
    }

    fn conf(&self) -> Option<String> {
        let conf = self.dir.join("app.conf").display().to_string();
        self.t.call(text_if_any, (conf,)).unwrap()
    }

    /// The state file's text, if there is one; asserts its mode (600) and
    /// its directories' (700) when there is.
    fn pending(&self) -> Option<String> {
        let (text, modes) = self
            .t
            .call(handler_state, (TOOL.to_owned(), self.plan.clone()))
            .unwrap();
        if text.is_some() {
            assert_eq!(modes, [0o600, 0o700, 0o700], "{}", self.host);
        }
        text
    }

    /// The handlers the state file lists, in order.
    fn pending_handlers(&self) -> Vec<String> {
        let Some(text) = self.pending() else {
            return Vec::new();
        };
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["format"], "chopsticks-handlers", "{text}");
        assert_eq!(json["version"], 1, "{text}");
        assert_eq!(json["tool"], TOOL, "{text}");
        assert_eq!(json["plan"], self.plan.as_str(), "{text}");
        json["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["by"], "config", "{text}");
                p["handler"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// After a run stopped between the notification and the handlers: no
    /// handler ran, both are pending, and the next run finishes them.
    fn left_pending(&self) {
        assert_eq!(self.handled(), "");
        assert_eq!(self.pending_handlers(), ["reload", "restart"]);
        self.finishes_what_was_pending("v1\n");
    }

    /// The run after a pending one: nothing else changes, both handlers
    /// run (once each, in order) and say they were pending; the state
    /// file goes; the run after that changes nothing and runs none.
    fn finishes_what_was_pending(&self, content: &str) {
        let next = self.run(content, &[]);
        next.ran_both("pending since ");
        assert!(!next.steps[0].1.changed, "{}", next.text);
        let summary = next.summary("restart");
        assert!(
            summary.contains(" UTC (notified by config; an earlier run did not finish it): "),
            "{summary}"
        );
        assert_eq!(self.handled(), "restart\nreload\n");
        assert_eq!(self.pending(), None, "cleared once the handlers succeeded");
        let after = self.run(content, &[]);
        assert_eq!(after.code, Some(0), "{}", after.text);
        assert_eq!(after.names(), ["config"], "{}", after.text);
        assert_eq!(self.handled(), "restart\nreload\n", "ran again");
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

#[test]
fn a_failed_step_leaves_the_handlers_pending_for_the_next_run_only() {
    for host in ["cs-deb12", "cs-deb12-deploy"] {
        let case = Case::new(host, "failed");
        let first = case.run("v1\n", &["--fail"]);
        assert_eq!(first.code, Some(2), "{}", first.text);
        assert_eq!(first.names(), ["config"], "{}", first.text);
        assert_eq!(first.failed.as_deref(), Some("broken"), "{}", first.text);
        assert_eq!(case.conf().as_deref(), Some("v1\n"));
        assert_eq!(case.handled(), "", "a handler ran after a failed step");
        assert_eq!(case.pending_handlers(), ["reload", "restart"]);
        case.finishes_what_was_pending("v1\n");
    }
}

#[test]
fn two_handlers_notified_by_one_step_run_once_each_in_declaration_order() {
    // (The step notifies reload, then restart: the declarations decide.)
    let case = Case::new("cs-deb12", "order");
    let run = case.run("v1\n", &[]);
    run.ran_both("notified by config: ");
    assert_eq!(case.handled(), "restart\nreload\n");
    assert_eq!(case.pending(), None);
    // Another change notifies them again: they run again, once each.
    case.run("v2\n", &[]).ran_both("notified by config: ");
    assert_eq!(case.handled(), "restart\nreload\nrestart\nreload\n");
}

#[test]
fn check_mode_says_what_would_run_and_why_and_writes_nothing() {
    for host in ["cs-deb12", "cs-deb12-deploy"] {
        let case = Case::new(host, "check");
        case.run("v1\n", &["--check"])
            .ran_both("would run, notified by config: ");
        assert_eq!(case.conf(), None);
        assert_eq!(case.pending(), None, "check mode wrote the state file");
        assert_eq!(case.handled(), "");
        // Pending from a failed run: check mode says since when, and
        // leaves the state file as it was.
        let failed = case.run("v1\n", &["--fail"]);
        assert_eq!(failed.code, Some(2), "{}", failed.text);
        let before = case.pending().expect("pending after the failed run");
        let check = case.run("v1\n", &["--check"]);
        check.ran_both("would run, pending since ");
        let summary = check.summary("restart");
        assert!(
            summary.contains("(notified by config; an earlier run did not finish it)"),
            "{summary}"
        );
        assert_eq!(case.pending().as_deref(), Some(before.as_str()));
        assert_eq!(case.handled(), "");
        case.finishes_what_was_pending("v1\n");
    }
}

/// Waits up to 30 s for `done`.
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the tool with a step that sleeps after the notification, waits
/// until it sleeps on the host, and returns it with its marker. `capture`:
/// pipe its output (a killed tool's output is not read: its ssh children,
/// left behind, may hold the pipes open).
fn sleeping(case: &Case, capture: bool) -> (Child, String) {
    let marker = format!("cs-handlers-sleep-{}", case.plan);
    let out = || match capture {
        true => Stdio::piped(),
        false => Stdio::null(),
    };
    let child = case
        .command("v1\n", &["--sleep", &marker])
        .stdout(out())
        .stderr(out())
        .spawn()
        .unwrap();
    wait_for(
        || {
            !case
                .t
                .call(processes_mentioning, (marker.clone(),))
                .unwrap()
                .is_empty()
        },
        "the step after the notification runs",
    );
    // Recorded as soon as the notifying step changed something.
    assert_eq!(case.pending_handlers(), ["reload", "restart"]);
    (child, marker)
}

/// A child's output and exit code, waited for up to 30 s.
fn finish(mut child: Child) -> Run {
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the tool hangs");
        thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run::of(stdout, stderr, code)
}

/// The agent serving the step that sleeps with `marker`: the nearest
/// ancestor of that step's process whose executable is a cached agent
/// (named by its SHA-256).
#[remote]
fn agent_of(marker: String) -> Option<u32> {
    let needle = format!("CS_MARKER={marker}");
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let is_agent = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
            // (" (deleted)": another test may forget a cached agent.)
            let name = exe.file_name().unwrap_or_default().to_string_lossy();
            let name = name.strip_suffix(" (deleted)").unwrap_or(&name);
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let mut at = pid;
        while let Some(up) = parent(at).filter(|p| *p > 1) {
            if is_agent(up) {
                return Some(up);
            }
            at = up;
        }
    }
    None
}

/// SIGKILL to the controller (the tool running the plan) while the step
/// after the notification runs on the host: its agent, left without a
/// controller, ends (cancelling the step); no handler runs; the next run
/// runs them, once each.
#[test]
fn a_killed_controller_leaves_the_handlers_pending() {
    for host in ["cs-deb12", "cs-deb12-deploy"] {
        let case = Case::new(host, "killed");
        let (mut child, marker) = sleeping(&case, false);
        let agent = case
            .t
            .call(agent_of, (marker.clone(),))
            .unwrap()
            .expect("no agent runs the sleeping step");
        // SAFETY: a signal to the tool this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let killed = child.wait().unwrap();
        assert_eq!(killed.code(), None, "{killed:?}");
        wait_for(
            || !case.t.call(process_alive, (agent,)).unwrap(),
            "the agent of the killed controller ends",
        );
        wait_for(
            || {
                case.t
                    .call(processes_mentioning, (marker.clone(),))
                    .unwrap()
                    .is_empty()
            },
            "the step of the killed controller's agent stops",
        );
        case.left_pending();
    }
}

/// The kit's Ctrl-C cancels the calls in flight: the plan stops in the
/// step after the notification, and the handlers wait for the next run.
#[test]
fn ctrl_c_between_the_notification_and_the_handlers_leaves_them_pending() {
    let case = Case::new("cs-deb12", "ctrl-c");
    let (child, marker) = sleeping(&case, true);
    // SAFETY: signals a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let stopped = finish(child);
    assert_eq!(stopped.code, Some(130), "{}", stopped.text);
    wait_for(
        || {
            case.t
                .call(processes_mentioning, (marker.clone(),))
                .unwrap()
                .is_empty()
        },
        "the interrupted step stopped on the host",
    );
    case.left_pending();
}

/// The agent is cached on the host by its hash, so each build of a tool
/// runs another file there: the tool's name (`CHOPSTICKS_TOOL`) is what a
/// new build finds the old build's pending handlers by.
#[test]
fn a_new_build_of_the_tool_finds_the_old_builds_pending_handlers() {
    let case = Case::new("cs-deb12", "rebuilt");
    let first = case.run("v1\n", &["--fail"]);
    assert_eq!(first.code, Some(2), "{}", first.text);
    assert_eq!(case.pending_handlers(), ["reload", "restart"]);
    // Another build: the same program with another compiler comment (a
    // section the loader ignores), under the same name.
    let mut exe = std::fs::read(env!("CARGO_BIN_EXE_handler_tool")).unwrap();
    // (A new one each time: an agent cached by an earlier run of this test
    // would not show that this run shipped another.)
    let comment = b"rustc version";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let other = format!("R{:012}", nanos % 1_000_000_000_000);
    let mut changed = 0;
    for at in 0..exe.len() - comment.len() {
        if &exe[at..at + comment.len()] == comment {
            exe[at..at + comment.len()].copy_from_slice(other.as_bytes());
            changed += 1;
        }
    }
    assert!(changed > 0, "no compiler comment in the tool");
    let dir = case.state.join("rebuilt");
    std::fs::create_dir_all(&dir).unwrap();
    let rebuilt = dir.join(TOOL);
    std::fs::write(&rebuilt, exe).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&rebuilt, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = case.t.call(cached_agents, ()).unwrap();
    let out = case.command_of(&rebuilt, "v1\n", &[]).output().unwrap();
    let next = Run::of(
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    );
    let after = case.t.call(cached_agents, ()).unwrap();
    let new: Vec<String> = after.into_iter().filter(|a| !before.contains(a)).collect();
    assert!(
        !new.is_empty(),
        "the rebuilt tool ran no new agent: {before:?}"
    );
    case.t.call(forget_agents, (new,)).unwrap();
    assert_eq!(next.code, Some(0), "{}", next.text);
    assert_eq!(
        next.names(),
        ["config", "restart", "reload"],
        "{}",
        next.text
    );
    assert!(
        next.summary("restart").starts_with("pending since "),
        "{}",
        next.text
    );
    assert_eq!(case.handled(), "restart\nreload\n");
    assert_eq!(case.pending(), None);
}

/// A state file that is not one of ours (here: not JSON) stops the plan
/// before any step runs, naming the file and what to do.
#[test]
fn a_state_file_that_is_not_ours_stops_the_plan_and_says_what_to_do() {
    let case = Case::new("cs-deb12", "corrupt");
    let dir = format!("/var/lib/chopsticks/{TOOL}");
    let mkdir = ops::Directory::new(&dir).mode(0o700);
    case.t.call(ops::directory, (mkdir, Mode::Apply)).unwrap();
    let path = format!("{dir}/{}.handlers.json", case.plan);
    let junk = ops::File::new(&path).content("{not json").mode(0o600);
    case.t.call(ops::file, (junk, Mode::Apply)).unwrap();
    for args in [&["--check"][..], &[]] {
        let run = case.run("v1\n", args);
        assert_eq!(run.code, Some(2), "{}", run.text);
        assert_eq!(run.failed.as_deref(), Some("handlers"), "{}", run.text);
        assert!(run.steps.is_empty(), "{}", run.text);
        assert_eq!(run.error["target"], path.as_str(), "{}", run.text);
        let message = run.error["message"].as_str().unwrap();
        assert!(
            message.contains("is not a handler state file") && message.contains("remove it"),
            "{message}"
        );
    }
    assert_eq!(case.conf(), None, "a step ran");
    let gone = ops::File::new(&path).absent();
    case.t.call(ops::file, (gone, Mode::Apply)).unwrap();
}

/// A step after the handlers notifies one again (`--late`): the report
/// fails, saying to declare handlers after the steps that notify them,
/// and the notification is kept: the next run runs that handler, once,
/// saying which step notified it.
#[test]
fn a_notification_after_its_handler_ran_is_kept_for_the_next_run() {
    for host in ["cs-deb12", "cs-deb12-deploy"] {
        let case = Case::new(host, "late");
        let check = case.run("v1\n", &["--late", "--check"]);
        assert_eq!(check.code, Some(2), "{}", check.text);
        assert_eq!(check.failed.as_deref(), Some("restart"), "{}", check.text);
        assert_eq!(case.pending(), None, "check mode wrote the state file");
        let first = case.run("v1\n", &["--late"]);
        assert_eq!(first.code, Some(2), "{}", first.text);
        assert_eq!(
            first.names(),
            ["config", "restart", "reload", "late"],
            "{}",
            first.text
        );
        assert_eq!(first.failed.as_deref(), Some("restart"), "{}", first.text);
        let message = first.error["message"].as_str().unwrap();
        assert!(
            message.contains("notified by late after its handler was declared")
                && message.contains("declare handlers after the steps that notify them"),
            "{message}"
        );
        assert_eq!(case.handled(), "restart\nreload\n");
        let (text, _) = case
            .t
            .call(handler_state, (TOOL.to_owned(), case.plan.clone()))
            .unwrap();
        let json: Value =
            serde_json::from_str(&text.expect("the late notification was lost")).unwrap();
        assert_eq!(json["pending"][0]["handler"], "restart");
        assert_eq!(json["pending"][0]["by"], "late");
        let next = case.run("v1\n", &[]);
        assert_eq!(next.code, Some(0), "{}", next.text);
        assert_eq!(next.names(), ["config", "restart"], "{}", next.text);
        let summary = next.summary("restart");
        assert!(
            summary.starts_with("pending since ") && summary.contains("(notified by late;"),
            "{summary}"
        );
        assert_eq!(case.handled(), "restart\nreload\nrestart\n");
        assert_eq!(case.pending(), None);
    }
}

/// Removes root's handler state of `tool` on this host.
#[remote]
fn remove_tool_state(tool: String) {
    let _ = std::fs::remove_dir_all(format!("/var/lib/chopsticks/{tool}"));
}

/// Two runs at once of a tool this host has never kept handler state for
/// (its directory does not exist): both make it, neither fails, both run
/// their handlers, and nothing is left pending.
#[test]
fn two_runs_at_once_on_a_fresh_host_both_succeed() {
    let case = Case::new("cs-deb12", "fresh");
    // The same program under a name of its own: a tool new to the host.
    let tool = format!("handler_tool_fresh{}", std::process::id());
    let dir = case.state.join("fresh");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(&tool);
    std::fs::copy(env!("CARGO_BIN_EXE_handler_tool"), &exe).unwrap();
    case.t.call(remove_tool_state, (tool.clone(),)).unwrap();
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            case.command_of(&exe, "v1\n", &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = runs.into_iter().map(finish).collect();
    for run in &runs {
        assert_eq!(run.code, Some(0), "{}", run.text);
        assert!(run.failed.is_none(), "{}", run.text);
    }
    let handled = case.handled();
    assert!(
        handled.lines().filter(|l| *l == "restart").count() >= 1,
        "{handled}"
    );
    let (text, modes) = case
        .t
        .call(handler_state, (tool.clone(), case.plan.clone()))
        .unwrap();
    assert_eq!(text, None, "left pending");
    assert_eq!(modes, [0o700, 0o700], "the fresh directories");
    case.t.call(remove_tool_state, (tool,)).unwrap();
}

/// A state file of a newer version (whatever else it holds) stops the
/// plan before any step, asking to upgrade the tool rather than to remove
/// the file.
#[test]
fn a_state_file_of_a_newer_version_asks_for_an_upgrade() {
    let case = Case::new("cs-deb12", "newer");
    let dir = format!("/var/lib/chopsticks/{TOOL}");
    let mkdir = ops::Directory::new(&dir).mode(0o700);
    case.t.call(ops::directory, (mkdir, Mode::Apply)).unwrap();
    let path = format!("{dir}/{}.handlers.json", case.plan);
    let newer = r#"{"format":"chopsticks-handlers","version":2,"queue":{"restart":{}}}"#;
    let file = ops::File::new(&path).content(newer).mode(0o600);
    case.t.call(ops::file, (file, Mode::Apply)).unwrap();
    for args in [&["--check"][..], &[]] {
        let run = case.run("v1\n", args);
        assert_eq!(run.code, Some(2), "{}", run.text);
        assert_eq!(run.failed.as_deref(), Some("handlers"), "{}", run.text);
        assert!(run.steps.is_empty(), "{}", run.text);
        let message = run.error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("written by a newer build of {TOOL}"))
                && message.contains("upgrade")
                && !message.contains("remove it"),
            "{message}"
        );
    }
    assert_eq!(case.conf(), None, "a step ran");
    let kept = case.t.call(text_if_any, (path.clone(),)).unwrap();
    assert_eq!(kept.as_deref(), Some(newer), "the newer file was touched");
    let gone = ops::File::new(&path).absent();
    case.t.call(ops::file, (gone, Mode::Apply)).unwrap();
}
