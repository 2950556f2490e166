//! Operations against real hosts (a local tunnel; ssh to Debian 12 and to
//! busybox): check mode changes nothing and says what apply then does,
//! apply is idempotent, secrets show no diff, errors name the path.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chopsticks::ops::{self, Mode};
use chopsticks::Error;
use chopsticks_tests::*;

use crate::steps::{check_then_apply, connect, listing, scratch};

fn every_path_operation_checks_applies_and_settles(host: &str) {
    let t = connect(host);
    let root = scratch(&t, host);
    let file = |m: Mode| {
        let spec = ops::File::new(root.join("motd"))
            .content("hello\nworld\n")
            .mode(0o640);
        t.call(ops::file, (spec, m))
    };
    let created = check_then_apply(&t, &root, &file);
    assert!(
        created.changed && created.summary.starts_with("create "),
        "{created:?}"
    );
    assert!(
        created.diff.as_deref().unwrap().contains("+hello\n"),
        "{created:?}"
    );

    let edit = |m: Mode| {
        let spec = ops::File::new(root.join("motd"))
            .content("hello\nthere\n")
            .mode(0o644);
        t.call(ops::file, (spec, m))
    };
    let edited = check_then_apply(&t, &root, &edit);
    assert!(edited.summary.contains("mode 0640 -> 0644"), "{edited:?}");
    let diff = edited.diff.unwrap();
    assert!(
        diff.contains("-world\n+there\n") && diff.contains(" hello\n"),
        "{diff}"
    );

    let secret = |m: Mode| {
        let spec = ops::File::new(root.join("token"))
            .content("s3cr3t-v1")
            .secret();
        t.call(ops::file, (spec, m))
    };
    check_then_apply(&t, &root, &secret);
    let rotate = |m: Mode| {
        let spec = ops::File::new(root.join("token"))
            .content("s3cr3t-v2")
            .secret();
        t.call(ops::file, (spec, m))
    };
    let rotated = check_then_apply(&t, &root, &rotate);
    assert_eq!(rotated.diff, None);
    assert!(!format!("{rotated:?}").contains("s3cr3t"), "{rotated:?}");
    assert!(rotated.summary.contains("(secret)"), "{rotated:?}");

    let dir = |m: Mode| {
        let spec = ops::Directory::new(root.join("conf.d")).mode(0o750);
        t.call(ops::directory, (spec, m))
    };
    check_then_apply(&t, &root, &dir);
    let link = |m: Mode| {
        let spec = ops::Symlink::new(root.join("current"), "conf.d");
        t.call(ops::symlink, (spec, m))
    };
    check_then_apply(&t, &root, &link);
    let relink = |m: Mode| {
        let spec = ops::Symlink::new(root.join("current"), "motd");
        t.call(ops::symlink, (spec, m))
    };
    let relinked = check_then_apply(&t, &root, &relink);
    assert!(relinked.summary.contains("(was -> conf.d)"), "{relinked:?}");

    let gone = |m: Mode| {
        let spec = ops::File::new(root.join("token")).absent();
        t.call(ops::file, (spec, m))
    };
    check_then_apply(&t, &root, &gone);
    let tree_gone = |m: Mode| {
        let spec = ops::Directory::new(root.join("conf.d")).absent();
        t.call(ops::directory, (spec, m))
    };
    check_then_apply(&t, &root, &tree_gone);
    let unlinked = |m: Mode| {
        let spec = ops::Symlink::new(root.join("current"), "motd").absent();
        t.call(ops::symlink, (spec, m))
    };
    check_then_apply(&t, &root, &unlinked);
    assert_eq!(
        listing(&t, &root)
            .iter()
            .map(|e| String::from_utf8_lossy(&e.0).into_owned())
            .collect::<Vec<_>>(),
        ["", "motd"]
    );

    // Errors name the operation and the path, in check mode too.
    for m in [Mode::Check, Mode::Apply] {
        let spec = ops::File::new(&root).content("x");
        let err = t.call(ops::file, (spec, m)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Remote { .. }), "{err:?}");
        assert!(text.starts_with(&format!("{host}: ")), "{text}");
        assert!(
            text.contains(&format!("ops::file {}: is a directory", root.display())),
            "{text}"
        );
    }
    // What an earlier step could still create is noted in check mode, and
    // refused by apply if it is still missing.
    let spec = ops::File::new(root.join("motd")).owner("nobody-such");
    let noted = t.call(ops::file, (spec.clone(), Mode::Check)).unwrap();
    assert!(noted.summary.contains("must exist by then"), "{noted:?}");
    let err = t.call(ops::file, (spec, Mode::Apply)).unwrap_err();
    assert!(err.to_string().contains("no user `nobody-such`"), "{err}");
    let spec = ops::Directory::new(root.join("no/such/parent"));
    let noted = t.call(ops::directory, (spec.clone(), Mode::Check)).unwrap();
    assert!(noted.summary.contains("needs the directory"), "{noted:?}");
    let err = t.call(ops::directory, (spec, Mode::Apply)).unwrap_err();
    assert!(
        err.to_string().contains("no such file or directory"),
        "{err}"
    );
    // A trailing slash names a link, not what it points to.
    let victim = root.join("victim");
    t.call(ops::directory, (ops::Directory::new(&victim), Mode::Apply))
        .unwrap();
    t.call(
        ops::file,
        (ops::File::new(victim.join("keep")), Mode::Apply),
    )
    .unwrap();
    t.call(
        ops::symlink,
        (ops::Symlink::new(root.join("ln"), &victim), Mode::Apply),
    )
    .unwrap();
    let through = format!("{}/", root.join("ln").display());
    let err = t
        .call(
            ops::directory,
            (ops::Directory::new(&through).absent(), Mode::Apply),
        )
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
    assert!(
        listing(&t, &victim).iter().any(|e| e.0 == b"keep"),
        "the link's target is intact"
    );
    t.call(remove_tree, (victim.as_os_str().as_bytes().to_vec(),))
        .unwrap();
    t.call(
        ops::symlink,
        (
            ops::Symlink::new(root.join("ln"), &victim).absent(),
            Mode::Apply,
        ),
    )
    .unwrap();
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn path_operations_on_a_local_tunnel() {
    every_path_operation_checks_applies_and_settles("localhost");
}

#[test]
fn path_operations_on_debian() {
    every_path_operation_checks_applies_and_settles("cs-deb12");
}

#[test]
fn path_operations_on_busybox() {
    every_path_operation_checks_applies_and_settles("cs-busybox");
}

/// A whole host's plan in one round trip: a #[remote] function of the
/// user's runs several operations and reports them together.
#[chopsticks::remote]
fn site_plan(root: PathBuf, mode: Mode) -> Result<ops::Report, ops::OpError> {
    let mut report = ops::Report::new();
    let conf = root.join("app");
    report.add(
        "conf dir",
        ops::directory(ops::Directory::new(&conf), mode)?,
    );
    let changed = report
        .add(
            "app.conf",
            ops::file(
                ops::File::new(conf.join("app.conf")).content("port = 80\n"),
                mode,
            )?,
        )
        .changed;
    if changed {
        report.add(
            "reload mark",
            ops::file(ops::File::new(conf.join("reload")).content(""), mode)?,
        );
    }
    Ok(report)
}

#[test]
fn a_host_plan_runs_in_one_call_and_reports_each_step() {
    let t = connect("cs-deb12");
    let root = scratch(&t, "plan");
    let preview = t.call(site_plan, (root.clone(), Mode::Check)).unwrap();
    assert_eq!(preview.changed(), 3, "{preview}");
    // In check mode the directory is not made, so its file's plan says
    // "create" without reading it: the same three steps apply.
    let applied = t.call(site_plan, (root.clone(), Mode::Apply)).unwrap();
    assert_eq!(applied.changed(), 3, "{applied}");
    let text = applied.to_string();
    assert!(text.contains("changed  app.conf: create "), "{text}");
    assert!(text.contains("+port = 80\n"), "{text}");
    let again = t.call(site_plan, (root.clone(), Mode::Apply)).unwrap();
    assert_eq!(again.changed(), 0, "{again}");
    assert_eq!(
        again.steps.len(),
        2,
        "no reload when nothing changed: {again}"
    );
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

fn commands_run_when_their_guards_say_and_report_their_output(host: &str) {
    let t = connect(host);
    let root = scratch(&t, &format!("cmd-{host}"));
    let made = root.join("made");
    let script = format!("echo made > {}", made.display());
    let create = |m: Mode| {
        let spec = ops::Command::new(["sh", "-c", script.as_str()]).creates(&made);
        t.call(ops::command, (spec, m))
    };
    let ran = check_then_apply(&t, &root, &create);
    assert!(
        ran.changed && ran.summary.starts_with("ran `sh -c"),
        "{ran:?}"
    );
    assert_eq!(ran.output.as_ref().map(|o| o.status), Some(0));
    let skipped = create(Mode::Apply).unwrap();
    assert!(
        skipped.summary.contains("skipped: ") && skipped.summary.contains("exists"),
        "{skipped:?}"
    );

    let list = root.join("list");
    let append = format!("echo x >> {}", list.display());
    let list_s = list.display().to_string();
    let once = |m: Mode| {
        let spec = ops::Command::new(["sh", "-c", append.as_str()]).unless([
            "grep",
            "-q",
            "x",
            list_s.as_str(),
        ]);
        t.call(ops::command, (spec, m))
    };
    check_then_apply(&t, &root, &once);
    assert_eq!(t.call(read_file, (list_s.clone(),)).unwrap(), "x\n");

    // A command that only reads runs in check mode too, says the same in
    // both modes, never counts as changed, and fails when it fails.
    let reads = |m: Mode| {
        let spec = ops::Command::new(["grep", "-c", "x", list_s.as_str()])
            .changed_when(ops::ChangedWhen::Never);
        t.call(ops::command, (spec, m))
    };
    let check = reads(Mode::Check).unwrap();
    assert_eq!(check, reads(Mode::Apply).unwrap());
    assert!(!check.changed, "{check:?}");
    assert_eq!(
        check.output.as_ref().map(|o| o.stdout.as_str()),
        Some("1\n")
    );
    let missing = ops::Command::new(["grep", "-q", "x", "/nonexistent"])
        .changed_when(ops::ChangedWhen::Never);
    let err = t.call(ops::command, (missing, Mode::Check)).unwrap_err();
    assert!(err.to_string().contains("exited with status 2"), "{err}");

    // Guards look where the command runs.
    let in_dir = |m: Mode| {
        let spec = ops::Command::new(["sh", "-c", "echo > here"])
            .cwd(&root)
            .creates("here");
        t.call(ops::command, (spec, m))
    };
    check_then_apply(&t, &root, &in_dir);
    let quiet = ops::Command::new(["echo", "nothing to do"])
        .changed_when(ops::ChangedWhen::StdoutContains("updated".into()));
    let change = t.call(ops::command, (quiet, Mode::Apply)).unwrap();
    assert!(!change.changed, "{change:?}");
    assert_eq!(change.output.unwrap().stdout, "nothing to do\n");
    let two = ops::Command::new(["sh", "-c", "exit 2"]).changed_when(ops::ChangedWhen::ExitCode(2));
    assert!(t.call(ops::command, (two, Mode::Apply)).unwrap().changed);

    let failing = ops::Command::new(["sh", "-c", "echo oops >&2; exit 3"])
        .changed_when(ops::ChangedWhen::Always);
    let err = t
        .call(ops::command, (failing, Mode::Apply))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{host}: ")), "{err}");
    assert!(
        err.contains("ops::command `sh -c echo oops >&2; exit 3`: exited with status 3: oops"),
        "{err}"
    );
    let blind = ops::Command::new(["true"]);
    let err = t
        .call(ops::command, (blind, Mode::Check))
        .unwrap_err()
        .to_string();
    assert!(err.contains("say how its change shows"), "{err}");
    let missing =
        ops::Command::new(["no-such-program-here"]).changed_when(ops::ChangedWhen::Always);
    let err = t
        .call(ops::command, (missing, Mode::Apply))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot start `no-such-program-here`"), "{err}");

    // A secret command shows neither its arguments nor its output, in its
    // summary, its error or its Debug; the output is still there as data.
    let token = "hunter2-token";
    let secret = |script: &str| {
        ops::Command::new(["sh", "-c", script, token])
            .env("TOKEN", token)
            .changed_when(ops::ChangedWhen::Always)
            .secret()
    };
    let ran = t
        .call(ops::command, (secret("echo \"$0\""), Mode::Apply))
        .unwrap();
    assert_eq!(ran.summary, "ran `sh (secret arguments)`: changed");
    assert_eq!(ran.output.unwrap().stdout, format!("{token}\n"));
    let err = t
        .call(
            ops::command,
            (secret("echo \"$0\" >&2; exit 1"), Mode::Apply),
        )
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains(token) && err.contains("`sh (secret arguments)`: exited with status 1"),
        "{err}"
    );
    assert!(!format!("{:?}", secret("x")).contains(token));
    // A time limit kills what runs longer, and says so.
    let slow = ops::Command::new(["sleep", "20"])
        .changed_when(ops::ChangedWhen::Always)
        .timeout(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = t
        .call(ops::command, (slow, Mode::Apply))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("did not finish within 0.5 s and was killed"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Output beyond the bound keeps its head and its tail.
    let loud = ops::Command::new([
        "sh",
        "-c",
        "echo first; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo last",
    ])
    .changed_when(ops::ChangedWhen::Always);
    let out = t
        .call(ops::command, (loud, Mode::Apply))
        .unwrap()
        .output
        .unwrap()
        .stdout;
    assert!(out.len() <= ops::MAX_OUTPUT + 100, "{}", out.len());
    assert!(out.starts_with("first\n") && out.ends_with("x\nlast\n"));
    assert!(out.contains(" bytes not kept ...]"));
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn commands_on_a_local_tunnel() {
    commands_run_when_their_guards_say_and_report_their_output("localhost");
}

#[test]
fn commands_on_debian() {
    commands_run_when_their_guards_say_and_report_their_output("cs-deb12");
}

#[test]
fn commands_on_busybox() {
    commands_run_when_their_guards_say_and_report_their_output("cs-busybox");
}

fn lines_are_put_in_once_replaced_by_regex_and_removed(host: &str) {
    let t = connect(host);
    let root = scratch(&t, &format!("line-{host}"));
    let conf = root.join("sshd_config");
    let seed = ops::File::new(&conf)
        .content("Port 22\n#PermitRootLogin yes\nUsePAM yes")
        .mode(0o600);
    t.call(ops::file, (seed, Mode::Apply)).unwrap();
    let set = |m: Mode| {
        let spec = ops::Line::new(&conf, "PermitRootLogin no").matching(r"^#?PermitRootLogin\b");
        t.call(ops::line, (spec, m))
    };
    let changed = check_then_apply(&t, &root, &set);
    let diff = changed.diff.unwrap();
    assert!(
        diff.contains("-#PermitRootLogin yes\n") && diff.contains("+PermitRootLogin no\n"),
        "{diff}"
    );
    let text = t.call(read_file, (conf.display().to_string(),)).unwrap();
    // As lineinfile: the last line keeps its missing newline.
    assert_eq!(text, "Port 22\nPermitRootLogin no\nUsePAM yes");
    let entries = listing(&t, &conf);
    assert_eq!(entries[0].2, 0o600, "the file keeps its mode");
    // Without a match the line is appended, once.
    let append = |m: Mode| {
        let spec = ops::Line::new(&conf, "X11Forwarding no");
        t.call(ops::line, (spec, m))
    };
    check_then_apply(&t, &root, &append);
    let remove = |m: Mode| {
        let spec = ops::Line::new(&conf, "UsePAM yes").absent();
        t.call(ops::line, (spec, m))
    };
    check_then_apply(&t, &root, &remove);
    let text = t.call(read_file, (conf.display().to_string(),)).unwrap();
    assert_eq!(text, "Port 22\nPermitRootLogin no\nX11Forwarding no\n");
    // A missing file is an error unless asked for.
    let err = t
        .call(
            ops::line,
            (ops::Line::new(root.join("nope"), "x"), Mode::Check),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ops::line") && err.contains("does not exist"),
        "{err}"
    );
    let create = |m: Mode| {
        let spec = ops::Line::new(root.join("new"), "x").create(true);
        t.call(ops::line, (spec, m))
    };
    check_then_apply(&t, &root, &create);
    let err = t
        .call(
            ops::line,
            (ops::Line::new(&conf, "x").matching("("), Mode::Check),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad regex"), "{err}");
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn lines_on_a_local_tunnel() {
    lines_are_put_in_once_replaced_by_regex_and_removed("localhost");
}

#[test]
fn lines_on_debian() {
    lines_are_put_in_once_replaced_by_regex_and_removed("cs-deb12");
}

#[test]
fn lines_on_busybox() {
    lines_are_put_in_once_replaced_by_regex_and_removed("cs-busybox");
}

#[test]
fn a_group_run_ends_with_a_recap_per_host() {
    let config = test_ssh_config();
    let g = chopsticks::Group::new(["cs-deb12", "cs-busybox", "cs-refused"]).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(20))
    });
    let path = format!("/tmp/cs-ops-recap-{}", std::process::id());
    let motd = ops::File::new(&path).content("recap\n");
    let mut recap = ops::Recap::new();
    recap.add(&g.call(ops::file, (motd.clone(), Mode::Apply)));
    recap.add(&g.call(ops::file, (motd.mode(0o600), Mode::Check)));
    let text = recap.to_string();
    assert!(
        text.contains("cs-deb12    ok=2  changed=2  unreachable=0  failed=0"),
        "{text}"
    );
    assert!(
        text.contains("cs-refused  ok=0  changed=0  unreachable=1  failed=0"),
        "{text}"
    );
    assert!(recap.unreachable());
    let gone = ops::File::new(&path).absent();
    for (host, result) in g.call(ops::file, (gone, Mode::Apply)).iter() {
        assert!(host == "cs-refused" || result.is_ok(), "{host}: {result:?}");
    }
}

fn accounts_are_created_changed_and_removed(host: &str) {
    let _one = crate::system_state();
    let t = connect(host);
    // Accounts live in /etc: check mode must leave all of it as it was.
    let etc = Path::new("/etc");
    let tag = std::process::id() % 100_000;
    let (team, ops_group, name) = (
        format!("cst{tag}"),
        format!("cso{tag}"),
        format!("csu{tag}"),
    );
    let group = |g: &str, m: Mode| t.call(ops::unix_group, (ops::UnixGroup::new(g), m));
    check_then_apply(&t, etc, &|m| group(&team, m));
    check_then_apply(&t, etc, &|m| group(&ops_group, m));
    let create = |m: Mode| {
        let spec = ops::User::new(&name)
            .groups([team.as_str()])
            .shell("/bin/sh");
        t.call(ops::user, (spec, m))
    };
    check_then_apply(&t, etc, &create);
    let users = t.call(chopsticks::facts::users, ()).unwrap();
    let user = users
        .iter()
        .find(|u| u.name == name)
        .expect("the user exists");
    assert_eq!(user.shell, "/bin/sh");
    let change = |m: Mode| {
        let spec = ops::User::new(&name)
            .groups([ops_group.as_str(), team.as_str()])
            .shell("/bin/bash");
        t.call(ops::user, (spec, m))
    };
    let changed = check_then_apply(&t, etc, &change);
    assert!(
        changed.summary.contains("shell /bin/sh -> /bin/bash"),
        "{changed:?}"
    );
    assert!(
        changed
            .summary
            .contains(&format!("groups [{team}] -> [{ops_group},{team}]")),
        "{changed:?}"
    );
    // A group an earlier step could create: noted in check, refused by apply.
    let spec = ops::User::new(&name).group("no-such-group");
    let noted = t.call(ops::user, (spec.clone(), Mode::Check)).unwrap();
    assert!(
        noted.summary.contains("needs the group no-such-group"),
        "{noted:?}"
    );
    let err = t
        .call(ops::user, (spec, Mode::Apply))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("usermod") && err.contains("no-such-group"),
        "{err}"
    );
    check_then_apply(&t, etc, &|m| {
        t.call(ops::user, (ops::User::new(&name).absent(), m))
    });
    check_then_apply(&t, etc, &|m| {
        t.call(ops::unix_group, (ops::UnixGroup::new(&team).absent(), m))
    });
    check_then_apply(&t, etc, &|m| {
        t.call(
            ops::unix_group,
            (ops::UnixGroup::new(&ops_group).absent(), m),
        )
    });
    t.call(remove_tree, (format!("/home/{name}").into_bytes(),))
        .unwrap();
}

#[test]
fn accounts_on_debian() {
    accounts_are_created_changed_and_removed("cs-deb12");
}

#[test]
fn accounts_on_busybox() {
    accounts_are_created_changed_and_removed("cs-busybox");
}
