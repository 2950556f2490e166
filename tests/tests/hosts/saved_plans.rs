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

/// Asserts what the file `name` in `files` holds (`None`: it is not there).
#[track_caller]
fn assert_content(files: &Path, name: &str, expected: Option<&str>) {
    assert_eq!(read(&files.join(name)).as_deref(), expected, "{name}");
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
        assert_content(&files, &format!("{host}.conf"), Some("new\n"));
    }
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

/// `plan_tool --check --save-plan` over both hosts with `extra`, each
/// host's `.conf` holding `old` first: the plan's path.
fn saved_plan(state: &Path, files: &Path, extra: &[&str]) -> String {
    for host in ["cs-many-1", "cs-many-2"] {
        std::fs::write(files.join(format!("{host}.conf")), "old\n").unwrap();
    }
    let plan = state.join("reviewed.plan.json");
    let plan = plan.to_str().unwrap().to_owned();
    let dir = files.to_str().unwrap();
    let mut args = vec!["-H", HOSTS, "--dir", dir, "--text", "new"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--check", "--save-plan", &plan]);
    let run = tool(&args, state);
    assert_eq!(run.code, 0, "{}", run.text());
    plan
}

/// A tool whose content on one host depends on the others it runs on
/// (`--peers`): when a drifted neighbour is refused, the other host is
/// checked again as the group the apply runs on, found to differ from
/// the reviewed plan, and refused too: nothing unreviewed is written.
#[test]
fn a_host_whose_content_depends_on_a_refused_neighbour_is_checked_again_and_refused() {
    let state = scratch("plans-peers-state");
    let files = scratch("plans-peers-files");
    let plan = saved_plan(&state, &files, &["--peers"]);
    std::fs::write(files.join("cs-many-2.conf"), "drifted\n").unwrap();
    let dir = files.to_str().unwrap();
    let args = ["-H", HOSTS, "--dir", dir, "--text", "new", "--peers"];
    let run = tool(&[&args[..], &["--apply-plan", &plan]].concat(), &state);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr
            .contains("on 1 hosts again, as the group the apply runs on"),
        "{}",
        run.text()
    );
    let refusal = |host: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(host) && l.contains("(reviewed plan)"))
            .unwrap_or_else(|| panic!("{host} not refused: {}", run.text()))
            .to_owned()
    };
    assert!(refusal("cs-many-2").contains("reviewed `-old`, now `-drifted`"));
    let first = refusal("cs-many-1");
    assert!(
        first.contains("differs from the reviewed plan")
            && first.contains("reviewed `+peers: cs-many-1,cs-many-2`, now `+peers: cs-many-1`"),
        "{first}"
    );
    assert_content(&files, "cs-many-1.conf", Some("old\n"));
    assert_content(&files, "cs-many-1.motd", None);
    assert_content(&files, "cs-many-2.conf", Some("drifted\n"));
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

/// The check pass is the reviewed plan's first batch for
/// `--max-fail-percentage`: one host of two refused is 50%, over a limit
/// of 10, so the matching host is not applied either.
#[test]
fn refused_hosts_count_toward_max_fail_percentage() {
    let state = scratch("plans-maxfail-state");
    let files = scratch("plans-maxfail-files");
    let plan = saved_plan(&state, &files, &[]);
    std::fs::write(files.join("cs-many-2.conf"), "drifted\n").unwrap();
    let dir = files.to_str().unwrap();
    let args = ["-H", HOSTS, "--dir", dir, "--text", "new"];
    let limit = ["--max-fail-percentage", "10", "--apply-plan", &plan];
    let run = tool(&[&args[..], &limit].concat(), &state);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains(
            "stopped before the apply: 50% of the planned hosts were refused, more than \
             --max-fail-percentage 10; not applied: cs-many-1"
        ),
        "{}",
        run.text()
    );
    assert_content(&files, "cs-many-1.conf", Some("old\n"));
    // Under the limit, the matching host is applied.
    let limit = ["--max-fail-percentage", "50", "--apply-plan", &plan];
    let run = tool(&[&args[..], &limit].concat(), &state);
    assert_eq!(run.code, 2, "{}", run.text());
    assert_content(&files, "cs-many-1.conf", Some("new\n"));
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

/// A host that cannot be reached during the check pass is refused as
/// unreachable (exit 4, `unreachable=1` in the recap), not as failed.
#[test]
fn a_host_unreachable_in_the_check_pass_is_refused_as_unreachable() {
    let state = scratch("plans-unreachable-state");
    let files = scratch("plans-unreachable-files");
    let plan = saved_plan(&state, &files, &[]);
    // The same host names, cs-many-2 now on a port where nothing listens.
    let inventory = state.join("hosts.ini");
    let refused = test_env("CHOPSTICKS_TEST_REFUSED_PORT");
    std::fs::write(
        &inventory,
        format!("cs-many-1\ncs-many-2 ansible_port={refused}\n"),
    )
    .unwrap();
    let dir = files.to_str().unwrap();
    let run = tool(
        &[
            "-i",
            inventory.to_str().unwrap(),
            "--dir",
            dir,
            "--text",
            "new",
            "--apply-plan",
            &plan,
        ],
        &state,
    );
    assert_eq!(run.code, 4, "{}", run.text());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("cs-many-2") && l.contains("(reviewed plan)"))
        .unwrap_or_else(|| panic!("cs-many-2 not refused: {}", run.text()));
    assert!(line.starts_with("unreachable"), "{line}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("cs-many-2")
            && l.contains("unreachable=1")
            && l.contains("failed=0")),
        "{}",
        run.text()
    );
    assert_content(&files, "cs-many-1.conf", Some("new\n"));
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}

/// Secret content has no diff: the plan compares it by a keyed digest
/// (the key in the state dir, 0600, out of the plan). Other secret
/// content of the same length, which reads the same in summaries, is
/// refused before anything is written.
#[test]
fn secret_content_is_compared_by_a_keyed_digest() {
    let state = scratch("plans-secret-state");
    let files = scratch("plans-secret-files");
    let plan = saved_plan(&state, &files, &["--secret", "swordfish-1"]);
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(!text.contains("swordfish"), "{text}");
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    let key_step = &saved["hosts"][0]["steps"][1];
    assert_eq!(key_step["step"], "key", "{text}");
    assert!(key_step.get("diff").is_none(), "{text}");
    assert_eq!(
        key_step["digest"].as_str().map(str::len),
        Some(64),
        "{text}"
    );
    let key = state.join("chopsticks/plan.key");
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(saved["digest_key"]
        .as_str()
        .is_some_and(|id| id.len() == 16));

    let dir = files.to_str().unwrap();
    let args = ["-H", HOSTS, "--dir", dir, "--text", "new"];
    let other = ["--secret", "swordfish-2", "--apply-plan", &plan];
    let run = tool(&[&args[..], &other].concat(), &state);
    assert_eq!(run.code, 2, "{}", run.text());
    for host in ["cs-many-1", "cs-many-2"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(host) && l.contains("(reviewed plan)"))
            .unwrap_or_else(|| panic!("{host} not refused: {}", run.text()));
        assert!(
            line.contains("step key: content: the digests of the reviewed content"),
            "{line}"
        );
        assert_content(&files, &format!("{host}.key"), None);
        assert_content(&files, &format!("{host}.conf"), Some("old\n"));
    }
    // The reviewed secret applies.
    let same = ["--secret", "swordfish-1", "--apply-plan", &plan];
    let run = tool(&[&args[..], &same].concat(), &state);
    assert_eq!(run.code, 0, "{}", run.text());
    assert_content(&files, "cs-many-1.key", Some("swordfish-1"));
    // Another user's key (here: a new one) refuses the plan whole.
    std::fs::remove_file(&key).unwrap();
    let key_state = scratch("plans-secret-other-key");
    let run = tool(&[&args[..], &same].concat(), &key_state);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr
            .contains("compares content by digests made with key"),
        "{}",
        run.text()
    );
    std::fs::remove_dir_all(state).unwrap();
    std::fs::remove_dir_all(key_state).unwrap();
    std::fs::remove_dir_all(files).unwrap();
}
