//! A reviewed plan, applied exactly, as a user meets it: `plan_tool
//! --check --save-plan F` on two hosts, one host drifts by hand, then
//! `--apply-plan F` refuses the drifted host (its files untouched) and
//! applies the other; a plan edited to name another build is refused;
//! `--save-plan` without `--check` is refused. The hosts are cs-many-1
//! and cs-many-2 (this machine's loopback sshd, each host its own files
//! in a scratch directory).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use chopsticks_tests::*;
use sha2::{Digest as _, Sha256};

use crate::cli::{scratch, ToolRun};

const HOSTS: &str = "cs-many-1,cs-many-2";

/// `plan_tool ARGS`, its state (journal, retry file) under `state`.
fn tool(args: &[&str], state: &Path) -> ToolRun {
    ToolRun::of(
        Command::new(env!("CARGO_BIN_EXE_plan_tool"))
            .arg("-F")
            .arg(test_ssh_config())
            .args(args)
            .env("XDG_STATE_HOME", state),
    )
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[test]
fn a_drifted_host_is_refused_while_its_neighbour_applies_the_reviewed_plan() {
    let state = scratch("plans-state");
    let files = scratch("plans-files");
    let dir = files.to_str().unwrap();
    let plan = state.join("reviewed.plan.json");
    let plan_arg = plan.to_str().unwrap();
    for host in ["cs-many-1", "cs-many-2"] {
        std::fs::write(files.join(format!("{host}.conf")), "old\n").unwrap();
    }
    let conf = |host: &str| files.join(format!("{host}.conf"));
    let motd = |host: &str| files.join(format!("{host}.motd"));

    // The check run writes the plan, and nothing on the hosts.
    let args = |extra: &[&'static str]| {
        let mut args = vec!["-H", HOSTS, "--dir", dir, "--text", "new"];
        args.extend_from_slice(extra);
        args
    };
    let mut check = args(&["--check", "--db-password", "hunter2", "--save-plan"]);
    check.push(plan_arg);
    let run = tool(&check, &state);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(
        run.stderr
            .contains("review it, then apply it with --apply-plan"),
        "{}",
        run.text()
    );
    assert_eq!(read(&conf("cs-many-1")).as_deref(), Some("old\n"));
    assert_eq!(read(&motd("cs-many-1")), None);
    let mode = std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(
        !text.contains("hunter2") && text.contains("(secret)"),
        "{text}"
    );
    assert!(text.starts_with("{\n  \"chopsticks_plan\": 1,\n"), "{text}");
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["tool"], "plan_tool");
    let exe = std::fs::read(env!("CARGO_BIN_EXE_plan_tool")).unwrap();
    let sha: String = Sha256::digest(&exe)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(saved["tool_sha256"], sha.as_str());
    let hosts = saved["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{text}");
    for host in hosts {
        let steps = host["steps"].as_array().unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
        // The step of values (kernel) is no part of a plan.
        assert_eq!(names, ["conf", "site/motd"], "{text}");
        assert_eq!(steps[0]["changed"], true);
        let diff: Vec<&str> = steps[0]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(diff.contains(&"-old") && diff.contains(&"+new"), "{text}");
    }

    // cs-many-2 drifts after the review.
    std::fs::write(conf("cs-many-2"), "drifted\n").unwrap();
    let mut apply = args(&["--apply-plan"]);
    apply.push(plan_arg);
    let run = tool(&apply, &state);
    assert_eq!(run.code, 2, "{}", run.text());
    let refusal = run
        .stdout
        .lines()
        .find(|l| l.contains("cs-many-2") && l.contains("(reviewed plan)"))
        .unwrap_or_else(|| panic!("no refusal of cs-many-2: {}", run.text()));
    assert!(
        refusal.contains("nothing applied: step conf: ")
            && refusal.contains("; diff line 4: reviewed `-old`, now `-drifted`"),
        "{refusal}"
    );
    assert_eq!(read(&conf("cs-many-2")).as_deref(), Some("drifted\n"));
    assert_eq!(read(&motd("cs-many-2")), None);
    assert_eq!(read(&conf("cs-many-1")).as_deref(), Some("new\n"));
    assert_eq!(read(&motd("cs-many-1")).as_deref(), Some("new\n"));
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.contains("cs-many-1") && l.contains("failed ")),
        "{}",
        run.text()
    );

    // Applied once, the plan no longer matches cs-many-1 (nothing to
    // change now): refused, and nothing happens.
    let run = tool(&apply, &state);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stdout
            .contains("reviewed changes something, now changes nothing"),
        "{}",
        run.text()
    );

    // A host the plan does not have is refused.
    let mut other = vec!["-H", "cs-many-1,cs-many-3", "--dir", dir, "--text", "new"];
    other.extend(["--apply-plan", plan_arg]);
    let run = tool(&other, &state);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("cs-many-3") && l.contains("not in the reviewed plan")),
        "{}",
        run.text()
    );
    assert_eq!(read(&conf("cs-many-3")), None);

    // A plan of another build is refused before any host is reached.
    std::fs::write(conf("cs-many-1"), "old\n").unwrap();
    let forged = text.replace(&sha, &"0".repeat(64));
    std::fs::write(&plan, forged).unwrap();
    let run = tool(&apply, &state);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains(&format!(
            "another build of plan_tool (sha256 {}); this one is sha256 {sha}",
            "0".repeat(64)
        )),
        "{}",
        run.text()
    );
    assert_eq!(read(&conf("cs-many-1")).as_deref(), Some("old\n"));

    // --save-plan without --check.
    let other_plan = state.join("unchecked.json");
    let mut unchecked = args(&["--save-plan"]);
    unchecked.push(other_plan.to_str().unwrap());
    let run = tool(&unchecked, &state);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr
            .contains("--save-plan writes what a check run would change: give it with --check"),
        "{}",
        run.text()
    );
    assert!(!other_plan.exists());
    assert_eq!(read(&conf("cs-many-1")).as_deref(), Some("old\n"));

    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

/// A host that changes between `--apply-plan`'s check pass and its apply
/// (the tool's `--sneak`): applied, and reported as an error of its host.
#[test]
fn an_apply_that_differs_from_the_reviewed_plan_is_an_error_of_its_host() {
    let state = scratch("plans-sneak-state");
    let files = scratch("plans-sneak-files");
    let dir = files.to_str().unwrap();
    let plan = state.join("reviewed.plan.json");
    let plan_arg = plan.to_str().unwrap();
    for host in ["cs-many-1", "cs-many-2"] {
        std::fs::write(files.join(format!("{host}.conf")), "old\n").unwrap();
    }
    let run = tool(
        &[
            "-H",
            HOSTS,
            "--dir",
            dir,
            "--text",
            "new",
            "--check",
            "--save-plan",
            plan_arg,
        ],
        &state,
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let run = tool(
        &[
            "-H",
            HOSTS,
            "--dir",
            dir,
            "--text",
            "new",
            "--sneak",
            "--apply-plan",
            plan_arg,
        ],
        &state,
    );
    assert_eq!(run.code, 2, "{}", run.text());
    for host in ["cs-many-1", "cs-many-2"] {
        let error = run
            .stdout
            .lines()
            .find(|l| l.contains(host) && l.contains("(reviewed plan)"))
            .unwrap_or_else(|| panic!("no error on {host}: {}", run.text()));
        assert!(
            error.contains("applied, but differs from the reviewed plan")
                && error.contains("step conf: ")
                && error.contains("diff line 4: reviewed `-old`, now `-sneaked`"),
            "{error}"
        );
        assert_eq!(
            read(&files.join(format!("{host}.conf"))).as_deref(),
            Some("new\n")
        );
    }
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}
