//! The run journal as a user meets it: a kit tool run several times,
//! then `--history` and `--history HOST`; `--no-journal` and
//! `CHOPSTICKS_NO_JOURNAL=1`; `--junit` read back by an XML parser;
//! `--profile`. The tool is `journal_tool` (tests/src/bin), on cs-many-*
//! (this machine's loopback sshd, each host its own files) and
//! cs-refused (unreachable).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use chopsticks_tests::*;

use crate::cli::{scratch, ToolRun};

/// `journal_tool ARGS` with its state (journal, retry file) under `state`.
fn tool(args: &[&str], state: &Path, env: &[(&str, &str)]) -> ToolRun {
    ToolRun::of(
        Command::new(env!("CARGO_BIN_EXE_journal_tool"))
            .arg("-F")
            .arg(test_ssh_config())
            .args(args)
            .env("XDG_STATE_HOME", state)
            .env_remove("CHOPSTICKS_NO_JOURNAL")
            .envs(env.iter().copied()),
    )
}

/// A test's two scratch directories: the tool's state (`XDG_STATE_HOME`),
/// and the hosts' files.
fn scratches(name: &str) -> (PathBuf, PathBuf) {
    (
        scratch(&format!("journal-{name}-state")),
        scratch(&format!("journal-{name}-files")),
    )
}

/// Removes a test's scratch directories.
fn clean((state, files): (PathBuf, PathBuf)) {
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

fn journal_file(state: &Path) -> PathBuf {
    state.join("chopsticks/journal_tool/journal.jsonl")
}

#[test]
fn history_lists_runs_newest_first_and_what_changed_on_a_host() {
    let (state, files) = scratches("history");
    let dir = files.to_str().unwrap();
    let hosts = "cs-many-1,cs-many-2";
    for (motd, secret) in [("one", None), ("two", None), ("three", Some("hunter2"))] {
        let mut args = vec!["-H", hosts, "--dir", dir, "--motd", motd];
        if let Some(secret) = secret {
            args.extend(["--db-password", secret]);
        }
        let run = tool(&args, &state, &[]);
        assert_eq!(run.code, 0, "{}", run.text());
    }
    // A fourth run changes nothing.
    let run = tool(&["-H", hosts, "--dir", dir, "--motd", "three"], &state, &[]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert_eq!(
        std::fs::read_to_string(files.join("cs-many-1.motd")).unwrap(),
        "three\n"
    );

    let journal = journal_file(&state);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal), 0o600);
    assert_eq!(mode(journal.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    let third = &records[2];
    assert_eq!(third["tool"], "journal_tool");
    assert!(third["user"].as_str().is_some_and(|u| !u.is_empty()));
    let args: Vec<&str> = third["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.ends_with(&["--db-password", "(secret)"]), "{args:?}");
    for at in ["start", "end"] {
        let time = third[at].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
    }
    assert!(third["start"].as_str() <= third["end"].as_str());
    assert_eq!(third["exit"], 0);
    let step = |host: &str, name: &str| {
        third["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host && s["step"] == name)
            .unwrap_or_else(|| panic!("{host} {name}: {third}"))
            .clone()
    };
    let motd = step("cs-many-1", "motd");
    assert_eq!(
        (motd["status"].as_str(), motd["changed"].as_bool()),
        (Some("changed"), Some(true))
    );
    assert!(
        motd["diff"].as_str().unwrap().contains("-two\n+three"),
        "{motd}"
    );
    // Durations measured on the host: the sleep's at least its 0.3 s.
    assert!(motd["ms"].as_f64().is_some(), "{motd}");
    let sleep = step("cs-many-2", "site/sleep");
    assert!(sleep["ms"].as_f64().unwrap() >= 300.0, "{sleep}");
    assert_eq!(step("cs-many-2", "kernel")["status"], "ok");

    // --history: the runs, newest first; it runs nothing (no -H needed).
    let history = tool(&["--history"], &state, &[]);
    assert_eq!(history.code, 0, "{}", history.text());
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", history.text());
    assert!(
        lines[0].contains("ok=2 changed=0 failed=0 unreachable=0"),
        "{}",
        history.stdout
    );
    assert!(
        lines[1].contains("ok=0 changed=2 failed=0"),
        "{}",
        history.stdout
    );
    assert!(
        lines[1].ends_with("--motd three --db-password '(secret)'"),
        "{}",
        history.stdout
    );
    assert!(lines[2].contains("--motd two"), "{}", history.stdout);
    assert!(lines[3].contains("--motd one"), "{}", history.stdout);

    // --history HOST --diff: what changed there, newest first.
    let host = tool(&["--history", "cs-many-1", "--diff"], &state, &[]);
    assert_eq!(host.code, 0, "{}", host.text());
    let out = &host.stdout;
    let at = |what: &str| out.find(what).unwrap_or_else(|| panic!("{what}:\n{out}"));
    // The newest run changed nothing there: counted, not listed.
    assert!(!out.contains("nothing changed"), "{out}");
    assert!(
        out.ends_with("(1 more runs on cs-many-1 found nothing to change: not shown)\n"),
        "{out}"
    );
    assert!(
        out.starts_with(&format!("{}  journal_tool", &out[..24])),
        "{out}"
    );
    assert!(
        out.lines().next().unwrap().contains("--motd three"),
        "{out}"
    );
    assert!(at("-two\n      +three") < at("-one\n      +two"), "{out}");
    assert!(at("changed      site/conf: ") < at("--motd two"), "{out}");
    // Only this host's steps (the other's files are not named).
    assert!(!out.contains("cs-many-2.motd"), "{out}");
    assert_eq!(
        out.matches("cs-many-1.motd: content changed").count(),
        2,
        "{out}"
    );
    // Without --diff, no diff.
    let host = tool(&["--history", "cs-many-1"], &state, &[]);
    assert!(!host.stdout.contains("+three"), "{}", host.text());
    let none = tool(&["--history", "cs-many-9"], &state, &[]);
    assert!(
        none.stdout.starts_with("no run on cs-many-9"),
        "{}",
        none.text()
    );

    clean((state, files));
}

#[test]
fn no_journal_and_its_environment_variable_write_nothing() {
    let (state, files) = scratches("off");
    let dir = files.to_str().unwrap();
    let run = tool(
        &["-H", "cs-many-3", "--dir", dir, "--no-journal"],
        &state,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let run = tool(
        &["-H", "cs-many-3", "--dir", dir, "--motd", "other"],
        &state,
        &[("CHOPSTICKS_NO_JOURNAL", "1")],
    );
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(files.join("cs-many-3.motd").exists(), "the runs ran");
    assert!(!state.join("chopsticks").exists(), "a journal was written");
    // `--journal DIR` puts it elsewhere; `CHOPSTICKS_NO_JOURNAL=0` is on.
    let elsewhere = files.join("journal");
    let run = tool(
        &[
            "-H",
            "cs-many-3",
            "--dir",
            dir,
            "--journal",
            elsewhere.to_str().unwrap(),
        ],
        &state,
        &[("CHOPSTICKS_NO_JOURNAL", "0")],
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let text = std::fs::read_to_string(elsewhere.join("journal.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(!state.join("chopsticks").exists());
    clean((state, files));
}

#[test]
fn junit_has_a_test_case_per_host_and_step_and_reads_back() {
    let (state, files) = scratches("junit");
    let dir = files.to_str().unwrap();
    let xml_path = files.join("run.xml");
    // Markup and a control character in the content reach the diff.
    let run = tool(
        &[
            "-H",
            "cs-many-4,cs-refused",
            "--dir",
            dir,
            "--motd",
            "<b>&\"\u{1b}[31m",
            "--broken",
            "--junit",
            xml_path.to_str().unwrap(),
        ],
        &state,
        &[],
    );
    assert_eq!(run.code, 4, "{}", run.text());
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("journal_tool"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        suite.attribute("tests"),
        Some(cases.len().to_string().as_str())
    );
    let names = |host: &str| -> Vec<&str> {
        cases
            .iter()
            .filter(|c| c.attribute("classname") == Some(host))
            .map(|c| c.attribute("name").unwrap())
            .collect()
    };
    assert_eq!(
        names("cs-many-4"),
        ["motd", "site/conf", "site/sleep", "kernel", "broken"],
        "{xml}"
    );
    // The unreachable host was reported once, when it failed to connect.
    assert_eq!(names("cs-refused"), ["(connect)"], "{xml}");
    let case = |host: &str, name: &str| {
        *cases
            .iter()
            .find(|c| c.attribute("classname") == Some(host) && c.attribute("name") == Some(name))
            .unwrap()
    };
    let child = |host: &str, name: &str, tag: &str| {
        case(host, name).children().find(|n| n.has_tag_name(tag))
    };
    // The failed step: a failure with the error.
    let failure = child("cs-many-4", "broken", "failure").expect("a failure element");
    assert!(
        failure
            .text()
            .unwrap()
            .contains("/nonexistent-cs-journal/x"),
        "{xml}"
    );
    assert_eq!(suite.attribute("failures"), Some("1"));
    // The unreachable host: an error of type unreachable, once.
    let error = child("cs-refused", "(connect)", "error").expect("an error element");
    assert_eq!(error.attribute("type"), Some("unreachable"), "{xml}");
    assert!(!error.attribute("message").unwrap().is_empty(), "{xml}");
    assert_eq!(suite.attribute("errors"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("0"));
    // The timestamp as JUnit readers parse it: no fractional seconds.
    let timestamp = suite.attribute("timestamp").unwrap();
    assert_eq!(timestamp.len(), "2026-12-07T08:13:19".len(), "{timestamp}");
    assert!(
        !timestamp.contains('.') && !timestamp.ends_with('Z'),
        "{timestamp}"
    );
    // The changed step: its summary and diff, the markup read back as it
    // was, the control character spelled out.
    let out = child("cs-many-4", "motd", "system-out")
        .unwrap()
        .text()
        .unwrap();
    assert!(out.starts_with("changed: "), "{out}");
    assert!(out.contains("+<b>&\"\\u{1b}[31m"), "{out}");
    let sleep = case("cs-many-4", "site/sleep").attribute("time").unwrap();
    assert!(sleep.parse::<f64>().unwrap() >= 0.3, "{sleep}");
    clean((state, files));
}

#[test]
fn profile_lists_the_slowest_steps_after_the_recap() {
    let (state, files) = scratches("profile");
    let dir = files.to_str().unwrap();
    let run = tool(
        &["-H", "cs-many-5,cs-many-6", "--dir", dir, "--profile"],
        &state,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let out = &run.stdout;
    let (recap, profile) = out
        .split_once("slowest steps (on the hosts):")
        .unwrap_or_else(|| panic!("{}", run.text()));
    assert!(recap.contains("changed=2"), "{out}");
    // `  0.301s  cs-many-5  site/sleep`, slowest first.
    let rows: Vec<(f64, &str, &str)> = profile
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].trim_end_matches('s').parse().unwrap(), f[1], f[2])
        })
        .collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert!(rows.windows(2).all(|w| w[0].0 >= w[1].0), "{out}");
    for row in &rows[..2] {
        assert_eq!(row.2, "site/sleep", "{out}");
        assert!(row.0 >= 0.3, "{out}");
    }
    let hosts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.1).collect();
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        ["cs-many-5", "cs-many-6"]
    );
    clean((state, files));
}
