use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::state::{euid, lock};
use super::*;
use crate::ops::{Change, Report};

/// A state file of its own for one test: `BASE/chopsticks/tool/plan.handlers.json`.
fn state(test: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("cs-handlers-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    base.join("chopsticks/tool/plan.handlers.json")
}

fn base_of(path: &Path) -> &Path {
    path.ancestors().nth(3).unwrap()
}

fn open(path: &Path, mode: Mode) -> Result<Handlers, OpError> {
    Handlers::at(path.to_owned(), "tool", "plan", mode)
}

fn changed(summary: &str) -> Result<Change, OpError> {
    Ok(Change {
        changed: true,
        summary: summary.into(),
        ..Change::default()
    })
}

fn unchanged() -> Result<Change, OpError> {
    Ok(Change::default())
}

#[test]
fn a_notification_is_kept_on_disk_until_its_handler_succeeds() {
    let path = state("kept");
    let mut first = open(&path, Mode::Apply).unwrap();
    first.notify("restart", "config").unwrap();
    // Written at once: private directories, a private file, versioned JSON.
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    for dir in [
        path.parent().unwrap(),
        path.parent().unwrap().parent().unwrap(),
    ] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["format"], "chopsticks-handlers");
    assert_eq!(json["version"], 1);
    assert_eq!(json["pending"][0]["handler"], "restart");
    assert_eq!(json["pending"][0]["by"], "config");
    // The run stops here. The next one finds it pending, since the first.
    let mut second = open(&path, Mode::Apply).unwrap();
    assert_eq!(
        second.reach("restart"),
        Ok(Some(Reason::Pending {
            since: first.started,
            by: "config".into()
        }))
    );
    assert_eq!(second.reach("restart"), Ok(None), "once per run");
    second.done("restart").unwrap();
    assert!(!path.exists(), "nothing pending: no file");
    let mut third = open(&path, Mode::Apply).unwrap();
    assert_eq!(third.reach("restart"), Ok(None));
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn check_mode_writes_nothing_and_reads_what_is_pending() {
    let path = state("check");
    let mut check = open(&path, Mode::Check).unwrap();
    check.notify("restart", "config").unwrap();
    assert!(!base_of(&path).exists(), "check mode wrote");
    assert_eq!(
        check.reach("restart"),
        Ok(Some(Reason::Notified("config".into())))
    );
    check.done("restart").unwrap();
    // Pending from an apply run: check mode says so, and keeps the file.
    open(&path, Mode::Apply)
        .unwrap()
        .notify("reload", "sshd")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut check = open(&path, Mode::Check).unwrap();
    assert!(matches!(
        check.reach("reload"),
        Ok(Some(Reason::Pending { .. }))
    ));
    check.done("reload").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn a_report_runs_handlers_once_in_order_and_not_after_a_failure() {
    let path = state("report");
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    report.run("config", || changed("written"));
    report.notify("restart");
    report.notify("reload");
    report.notify("restart");
    report.run("unchanged", unchanged);
    report.notify("never");
    report.run("broken", || Err(OpError::new("ops::x", "y", "failed")));
    report.notify("never");
    let mut ran = Vec::new();
    for name in ["restart", "reload"] {
        assert!(report.handler(name, || changed("ran")).is_none());
        ran.push(name);
    }
    assert_eq!(report.steps.len(), 2);
    assert_eq!(report.failed.as_ref().unwrap().0, "broken");
    // The handlers that would have run show as skipped; `never` was not notified.
    assert_eq!(report.skipped, ["restart", "reload"]);
    // The next run: nothing else changes, both run, once each, in order.
    let mut next = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    next.run("config", unchanged);
    next.notify("restart");
    let mut order = Vec::new();
    for name in ["reload", "restart", "reload", "never"] {
        next.handler(name, || {
            order.push(name);
            changed("done")
        });
    }
    assert_eq!(order, ["reload", "restart"]);
    let summaries: Vec<&str> = next.steps[1..]
        .iter()
        .map(|(_, c)| c.summary.as_str())
        .collect();
    assert!(summaries[0].starts_with("pending since "), "{summaries:?}");
    assert!(
        summaries[0].ends_with(" UTC (notified by config; an earlier run did not finish it): done"),
        "{summaries:?}"
    );
    assert!(next.failed.is_none());
    assert!(!path.exists());
    // And the run after does not run them again.
    let mut after = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    assert!(after.handler("restart", || changed("again")).is_none());
    assert!(after.steps.is_empty());
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn a_failed_handler_stays_pending_and_fails_the_report() {
    let path = state("failing");
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    report.run("config", || changed("written"));
    report.notify("restart");
    let failed = report.handler("restart", || Err(OpError::new("ops::service", "x", "no")));
    assert!(failed.is_none());
    assert_eq!(report.failed.as_ref().unwrap().0, "restart");
    let mut next = open(&path, Mode::Apply).unwrap();
    assert!(matches!(
        next.reach("restart"),
        Ok(Some(Reason::Pending { .. }))
    ));
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn check_mode_says_what_would_run_and_why() {
    let path = state("would");
    let mut report = Report::with_handlers(open(&path, Mode::Check).unwrap());
    report.run("config", || changed("would write"));
    report.notify("restart");
    let change = report
        .handler("restart", || changed("would restart"))
        .unwrap();
    assert_eq!(
        change.summary,
        "would run, notified by config: would restart"
    );
    assert!(!base_of(&path).exists());
}

#[test]
fn a_report_without_a_plan_refuses_a_notification() {
    let mut report = Report::new();
    report.run("config", || changed("written"));
    report.notify("restart");
    let (step, e) = report.failed.unwrap();
    assert_eq!(step, "restart");
    assert!(e.message.contains("Report::plan"), "{e}");
    // No change, no notification: nothing to refuse.
    let mut report = Report::new();
    report.run("config", unchanged);
    report.notify("restart");
    assert!(report.failed.is_none());
}

#[test]
fn names_that_could_be_paths_or_options_are_refused() {
    for bad in ["", ".hidden", "-rf", "a/b", "tab\there", &"x".repeat(129)] {
        let e = check_name("handler", bad).unwrap_err();
        assert_eq!(e.operation, "ops::Report");
        assert!(e.message.contains("name handlers with"), "{e}");
    }
    for good in ["restart", "restart cs-hello", "reload:sshd", "a.b-c_d+e@f"] {
        check_name("handler", good).unwrap();
    }
    let report = Report::plan("../etc", Mode::Check);
    let (step, e) = report.failed.unwrap();
    assert_eq!(step, "handlers");
    assert!(e.target.starts_with("plan "), "{e}");
}

/// Writes `text` as the state file and returns the error that reading it gives.
fn refused(test: &str, text: &str) -> OpError {
    let path = state(test);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    let e = open(&path, Mode::Check).unwrap_err();
    assert_eq!(e.target, path.display().to_string());
    std::fs::remove_dir_all(base_of(&path)).unwrap();
    e
}

#[test]
fn a_state_file_that_is_not_ours_is_refused_with_advice() {
    let e = refused("garbage", "{not json");
    assert!(e.message.contains("is not a handler state file"), "{e}");
    assert!(e.message.contains("remove it"), "{e}");
    // A newer version, whatever the rest of it looks like, is not corrupt:
    // it asks for the newer build.
    for newer in [
        r#"{"format":"chopsticks-handlers","version":9,"tool":"tool","plan":"plan","pending":[]}"#,
        r#"{"format":"chopsticks-handlers","version":2,"entries":{"restart":{}}}"#,
    ] {
        let e = refused("newer", newer);
        assert!(
            e.message.contains("written by a newer build of tool") && e.message.contains("upgrade"),
            "{e}"
        );
        assert!(!e.message.contains("remove it"), "{e}");
    }
    let e = refused(
        "other",
        r#"{"format":"chopsticks-handlers","version":1,"tool":"x","plan":"plan","pending":[]}"#,
    );
    assert!(
        e.message.contains("names the tool \"x\"") && e.message.contains("remove it"),
        "{e}"
    );
    let e = refused(
        "badname",
        r#"{"format":"chopsticks-handlers","version":1,"tool":"tool","plan":"plan",
            "pending":[{"handler":"a/x","by":"s","since":0}]}"#,
    );
    assert!(e.message.contains("holds a `/`"), "{e}");
    let e = refused("large", &" ".repeat(MAX_HANDLER_STATE + 1));
    assert!(e.message.contains("larger than"), "{e}");
}

#[test]
fn a_link_at_the_state_file_is_refused() {
    let path = state("link");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
    let e = open(&path, Mode::Apply).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn a_state_directory_open_to_others_is_made_private() {
    let path = state("private");
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    open(&path, Mode::Apply)
        .unwrap()
        .notify("restart", "config")
        .unwrap();
    let meta = std::fs::metadata(dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), euid());
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn too_many_pending_handlers_are_refused() {
    let path = state("many");
    let mut handlers = open(&path, Mode::Apply).unwrap();
    for i in 0..MAX_PENDING {
        handlers.notify(&format!("h{i}"), "step").unwrap();
    }
    let e = handlers.notify("one more", "step").unwrap_err();
    assert!(e.message.contains("pending already"), "{e}");
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn two_runs_at_once_keep_both_notifications() {
    let path = state("together");
    let mut one = open(&path, Mode::Apply).unwrap();
    one.notify("first", "a").unwrap();
    let mut two = open(&path, Mode::Apply).unwrap();
    // Another run holds the directory for a moment: this one waits.
    let held = lock(path.parent().unwrap()).unwrap();
    let waiting = std::thread::spawn(move || {
        two.notify("second", "b").unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !waiting.is_finished(),
        "wrote while another run held the lock"
    );
    drop(held);
    waiting.join().unwrap();
    let mut three = open(&path, Mode::Apply).unwrap();
    assert!(matches!(
        three.reach("first"),
        Ok(Some(Reason::Pending { .. }))
    ));
    assert!(matches!(
        three.reach("second"),
        Ok(Some(Reason::Pending { .. }))
    ));
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn a_notification_after_its_handler_ran_is_kept_for_the_next_run_and_fails_the_report() {
    let path = state("late");
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    report.run("config", || changed("written"));
    report.notify("restart");
    report.handler("restart", || changed("ran"));
    assert!(!path.exists(), "done: nothing pending");
    report.run("more config", || changed("written too"));
    report.notify("restart");
    let (step, e) = report.failed.clone().unwrap();
    assert_eq!(step, "restart");
    assert!(
        e.message
            .contains("notified by more config after its handler was declared")
            && e.message
                .contains("declare handlers after the steps that notify them"),
        "{e}"
    );
    // Kept: the next run runs it, once, and says who notified it.
    let mut next = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    let mut ran = 0;
    for _ in 0..2 {
        next.handler("restart", || {
            ran += 1;
            changed("ran")
        });
    }
    assert_eq!(ran, 1);
    assert!(
        next.steps[0]
            .1
            .summary
            .contains("(notified by more config;"),
        "{:?}",
        next.steps
    );
    assert!(!path.exists());
    // Check mode says the same, and writes nothing.
    let mut check = Report::with_handlers(open(&path, Mode::Check).unwrap());
    check.run("config", || changed("would write"));
    check.handler("restart", || changed("would run"));
    check.run("more config", || changed("would write too"));
    check.notify("restart");
    let (_, e) = check.failed.unwrap();
    assert!(e.message.contains("would be kept pending"), "{e}");
    assert!(!path.exists());
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn a_handler_clears_only_what_was_pending_when_it_started() {
    let path = state("newer");
    let mut one = open(&path, Mode::Apply).unwrap();
    one.notify("restart", "config").unwrap();
    assert!(one.reach("restart").unwrap().is_some());
    // While the handler of run one runs, run two notifies it again.
    let mut two = open(&path, Mode::Apply).unwrap();
    two.notify("restart", "config").unwrap();
    one.done("restart").unwrap();
    let mut three = open(&path, Mode::Apply).unwrap();
    assert!(
        matches!(three.reach("restart"), Ok(Some(Reason::Pending { .. }))),
        "run two's notification was cleared by run one's handler"
    );
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn runs_creating_the_state_directories_at_once_all_succeed() {
    for round in 0..20 {
        let path = state(&format!("race{round}"));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    open(&path, Mode::Apply)
                        .unwrap()
                        .notify(&format!("h{i}"), "config")
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["pending"].as_array().unwrap().len(), 8, "{text}");
        std::fs::remove_dir_all(base_of(&path)).unwrap();
    }
}

#[test]
fn a_notification_that_cannot_be_recorded_says_to_run_the_handler_by_hand() {
    let path = state("unrecorded");
    let handlers = open(&path, Mode::Apply).unwrap();
    // Something else than a directory where the state goes.
    std::fs::create_dir_all(base_of(&path)).unwrap();
    std::fs::write(path.parent().unwrap().parent().unwrap(), "").unwrap();
    let mut report = Report::with_handlers(handlers);
    report.run("config", || changed("written"));
    report.notify("restart");
    let (step, e) = report.failed.unwrap();
    assert_eq!(step, "restart");
    assert!(
        e.message.starts_with(
            "step config changed something but handler restart could not be recorded ("
        ) && e.message.ends_with("): run restart by hand"),
        "{e}"
    );
    std::fs::remove_dir_all(base_of(&path)).unwrap();
}

#[test]
fn run_notifying_lists_the_handlers_before_the_step_and_unlists_them_when_nothing_changed() {
    let path = state("before");
    let listed = |path: &Path| -> Vec<(String, String)> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap().to_owned();
                (s("handler"), s("by"))
            })
            .collect()
    };
    // Nothing changes: listed while the step runs (a kill then leaves it
    // pending), unlisted after.
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    let mut during = Vec::new();
    report.run_notifying("config", &["restart", "reload"], || {
        during = listed(&path);
        unchanged()
    });
    let both = |by: &str| {
        vec![
            ("restart".to_owned(), by.to_owned()),
            ("reload".to_owned(), by.to_owned()),
        ]
    };
    assert_eq!(during, both("config"));
    assert!(!path.exists(), "{:?}", listed(&path));
    assert!(report.handler("restart", || changed("ran")).is_none());
    assert!(report.failed.is_none());
    // Something changes: kept, and the handlers run, saying why.
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    let change = report.run_notifying("config", &["restart", "reload"], || changed("written"));
    assert!(change.unwrap().changed);
    assert_eq!(listed(&path), both("config"));
    let ran = report.handler("restart", || changed("ran")).unwrap();
    assert_eq!(ran.summary, "notified by config: ran");
    assert_eq!(
        listed(&path),
        vec![("reload".to_owned(), "config".to_owned())]
    );
    // A failed step keeps them: it may have changed something.
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    report.run_notifying("other", &["restart"], || {
        Err(OpError::new("ops::x", "y", "failed"))
    });
    assert_eq!(report.failed.as_ref().unwrap().0, "other");
    // What an earlier run left pending stays when a step changes nothing.
    let mut report = Report::with_handlers(open(&path, Mode::Apply).unwrap());
    report.run_notifying("again", &["restart", "reload"], unchanged);
    assert_eq!(
        listed(&path),
        vec![
            ("reload".to_owned(), "config".to_owned()),
            ("restart".to_owned(), "other".to_owned())
        ]
    );
    // Check mode writes nothing, and says what would run.
    std::fs::remove_dir_all(base_of(&path)).unwrap();
    let mut check = Report::with_handlers(open(&path, Mode::Check).unwrap());
    check.run_notifying("config", &["restart"], || changed("would write"));
    let would = check.handler("restart", || changed("would run")).unwrap();
    assert_eq!(would.summary, "would run, notified by config: would run");
    assert!(!base_of(&path).exists());
}
