//! Check-only tunnels (`TunnelBuilder::check_only`), as `--apply-plan`'s
//! check pass uses them: operations given `Mode::Apply` only say what
//! they would change, handlers are not recorded, a put is refused, and a
//! local archive is still unpacked in check mode. Over real ssh to
//! cs-local (this machine's loopback sshd), so the files are checked here.

use chopsticks::ops::{self, Mode, Report};
use chopsticks::remote;
use chopsticks::Source;
use chopsticks_tests::*;

use crate::cli::scratch;

/// A plan that notifies a handler from a step given `Mode::Apply`: the
/// report, and where its handlers' state file is.
#[remote]
fn notifying(plan: String, path: String, handled: String) -> (Report, Option<String>) {
    let mut report = Report::plan(&plan, Mode::Apply);
    report.run_notifying("conf", &["reload"], || {
        ops::file(ops::File::new(&path).content("new\n"), Mode::Apply)
    });
    report.handler("reload", || {
        ops::file(ops::File::new(&handled).content("reloaded\n"), Mode::Apply)
    });
    let state = report.handler_state().map(|p| p.display().to_string());
    (report, state)
}

#[test]
fn a_check_only_tunnel_changes_nothing_whatever_mode_it_is_given() {
    let dir = scratch("check-only");
    let conf = dir.join("app.conf");
    let handled = dir.join("reloaded");
    std::fs::write(&conf, "old\n").unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    let t = test_host("cs-local").check_only(true).connect().unwrap();
    assert!(t.is_check_only());

    // An operation given Mode::Apply says what it would change.
    let file = ops::File::new(path(&conf)).content("new\n");
    let change = t.call(ops::file, (file.clone(), Mode::Apply)).unwrap();
    assert!(change.changed, "{change:?}");
    assert!(change.diff.as_deref().unwrap_or("").contains("+new"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n");

    // A plan with a handler: the handler would run, and nothing is recorded.
    let plan = format!("check-only-{}", std::process::id());
    let (report, state) = t
        .call(notifying, (plan, path(&conf), path(&handled)))
        .unwrap();
    assert_eq!(report.steps.len(), 2, "{report:?}");
    assert!(report.steps.iter().all(|(_, c)| c.changed), "{report:?}");
    let state = state.expect("a plan with handlers has a state file");
    assert!(
        !std::path::Path::new(&state).exists(),
        "a check-only agent recorded {state}"
    );
    assert!(!handled.exists());
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n");

    // A put is refused, saying why; the target is untouched.
    let err = t
        .put(Source::bytes(b"put\n"), &conf)
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("check-only"), "{err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n");

    // A local archive is sent to a scratch directory and checked.
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), "a\n").unwrap();
    let archive = dir.join("site.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .args(["-cf"])
        .arg(&archive)
        .arg("a.txt")
        .status()
        .unwrap();
    assert!(status.success());
    let site = dir.join("site");
    std::fs::create_dir(&site).unwrap();
    let change = t
        .unarchive(ops::Unarchive::local(&archive, &site), Mode::Apply)
        .unwrap();
    assert!(change.changed, "{change:?}");
    assert_eq!(std::fs::read_dir(&site).unwrap().count(), 0);

    // The same on a tunnel that is not check-only applies.
    let t = test_host("cs-local").connect().unwrap();
    assert!(!t.is_check_only());
    t.call(ops::file, (file, Mode::Apply)).unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "new\n");
    std::fs::remove_dir_all(dir).unwrap();
}
