//! Content that lands checked: templates rendered on the host, new content
//! validated before it replaces a file (and refused, the file untouched,
//! when the validation fails, in check mode too), the old content kept as
//! a backup with its mode and owner; on a local tunnel, Debian 12 and
//! busybox.

use std::path::Path;

use chopsticks::ops::{self, Mode};
use chopsticks_tests::*;

use crate::steps::{check_then_apply, connect, listing, read, scratch};

/// An operation's error as the controller gets it: "OPERATION TARGET: MESSAGE".
fn op_error(e: chopsticks::Error) -> String {
    match e {
        chopsticks::Error::Remote { error, .. } => error.message().to_owned(),
        other => panic!("not an operation's error: {other}"),
    }
}

const MOTD: &str = "\
Welcome to {{ host }}.
{% for admin in admins %}
- {{ admin.name }}{% if admin.oncall %} (on call){% endif %}

{% endfor %}
";

fn templates_render_validate_and_back_up(host: &str) {
    let t = connect(host);
    let root = scratch(&t, &format!("tpl-{host}"));
    let motd = root.join("motd");
    let admins =
        serde_json::json!([{"name": "ana", "oncall": true}, {"name": "bo", "oncall": false}]);
    let render = |name: &str| {
        ops::Template::new(&motd, MOTD)
            .named("motd.j2")
            .var("host", &name)
            .var("admins", &admins)
            .mode(0o640)
    };
    // Rendered on the host, written as a file is: check, apply, settle.
    let made = check_then_apply(&t, &root, &|m| t.call(ops::template, (render("web1"), m)));
    assert!(
        made.changed && made.summary.starts_with("create "),
        "{made:?}"
    );
    assert_eq!(read(&t, &motd), "Welcome to web1.\n- ana (on call)\n- bo\n");
    assert!(made.diff.unwrap().contains("+Welcome to web1."));

    // New content replaces the old only once the validation passes; the
    // old is kept, mode and owner too.
    t.call(
        ops::file,
        (ops::File::new(&motd).owner("nobody"), Mode::Apply),
    )
    .unwrap();
    let checked = |name: &str| render(name).validate("grep -q Welcome %s").backup();
    let changed = check_then_apply(&t, &root, &|m| t.call(ops::template, (checked("web2"), m)));
    assert!(
        changed
            .summary
            .contains("validated by `grep -q Welcome %s`"),
        "{changed:?}"
    );
    assert!(
        changed.summary.contains("the old content kept as a backup"),
        "{changed:?}"
    );
    let backup = changed.backup.expect("apply names the backup");
    let backup = Path::new(&backup);
    assert_eq!(backup.parent(), Some(root.as_path()));
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("motd.20") && name.ends_with('~'), "{name}");
    assert_eq!(
        read(&t, backup),
        "Welcome to web1.\n- ana (on call)\n- bo\n"
    );
    assert_eq!(read(&t, &motd), "Welcome to web2.\n- ana (on call)\n- bo\n");
    let kept = listing(&t, &root);
    let mode_of = |file: &str| kept.iter().find(|e| e.0 == file.as_bytes()).map(|e| e.2);
    assert_eq!(mode_of(&name), Some(0o640));
    assert_eq!(
        t.call(owner_of, (backup.display().to_string(),)).unwrap().0,
        "nobody"
    );

    // A failing validation: an error quoting the validator, in check mode
    // too, and the file as it was, with no temporary file left beside it.
    let before = listing(&t, &root);
    let refused = |m| {
        t.call(
            ops::template,
            (render("web3").validate("grep -q Nope %s").backup(), m),
        )
    };
    for mode in [Mode::Check, Mode::Apply] {
        let e = op_error(refused(mode).unwrap_err());
        assert!(
            e.starts_with(&format!("ops::template {}: ", motd.display())),
            "{e}"
        );
        assert!(
            e.contains("fails validation: `grep -q Nope %s` exited with status 1"),
            "{e}"
        );
        assert!(e.contains("the file is unchanged"), "{e}");
        assert_eq!(
            listing(&t, &root),
            before,
            "a refused validation left something ({mode:?})"
        );
    }

    // Errors name the template, the line and the variable, before anything runs.
    let undefined = ops::Template::new(&motd, "a\n{{ hostname }}\n").named("motd.j2");
    let e = op_error(t.call(ops::template, (undefined, Mode::Check)).unwrap_err());
    assert!(
        e.contains(": motd.j2, line 2: `hostname` is undefined"),
        "{e}"
    );
    let bad = ops::Template::new(&motd, "{% for x in %}").named("motd.j2");
    let e = op_error(t.call(ops::template, (bad, Mode::Check)).unwrap_err());
    assert!(e.contains(": motd.j2, line 1, column "), "{e}");
    let e = op_error(
        t.call(
            ops::template,
            (render("x").validate("grep -q x"), Mode::Check),
        )
        .unwrap_err(),
    );
    assert!(e.contains("as %s"), "{e}");
}

#[test]
fn templates_on_a_local_tunnel() {
    templates_render_validate_and_back_up("localhost");
}

#[test]
fn templates_on_debian() {
    templates_render_validate_and_back_up("cs-deb12");
}

#[test]
fn templates_on_busybox() {
    templates_render_validate_and_back_up("cs-busybox");
}

/// `validate` and `backup` on the other content operations: a line in
/// `sshd_config` checked by `sshd -t` (Debian 12), a block and a file
/// checked by `grep` (everywhere).
fn lines_blocks_and_files_land_validated(host: &str) {
    let t = connect(host);
    let root = scratch(&t, &format!("land-{host}"));
    let conf = root.join("app.conf");
    let file = |text: &str| {
        ops::File::new(&conf)
            .content(text)
            .validate("grep -q ^port %s")
    };
    check_then_apply(&t, &root, &|m| t.call(ops::file, (file("port = 80\n"), m)));
    let e = op_error(
        t.call(ops::file, (file("# no port\n"), Mode::Check))
            .unwrap_err(),
    );
    assert!(e.contains("fails validation"), "{e}");
    assert_eq!(read(&t, &conf), "port = 80\n");

    let line = |text: &str| {
        ops::Line::new(&conf, text)
            .matching("^port")
            .validate("grep -q ^port %s")
            .backup()
    };
    let changed = check_then_apply(&t, &root, &|m| t.call(ops::line, (line("port = 8080"), m)));
    assert_eq!(read(&t, &conf), "port = 8080\n");
    assert_eq!(read(&t, Path::new(&changed.backup.unwrap())), "port = 80\n");
    let e = op_error(
        t.call(ops::line, (line("prt = 1"), Mode::Apply))
            .unwrap_err(),
    );
    assert!(e.contains("fails validation"), "{e}");
    assert_eq!(read(&t, &conf), "port = 8080\n");

    let block = |text: &str| {
        ops::Block::new(&conf, text)
            .validate("grep -q ^port %s")
            .backup()
    };
    let changed = check_then_apply(&t, &root, &|m| {
        t.call(ops::block, (block("a = 1\nb = 2"), m))
    });
    assert!(read(&t, &conf).contains("# BEGIN"), "{changed:?}");
    assert_eq!(
        read(&t, Path::new(&changed.backup.unwrap())),
        "port = 8080\n"
    );

    // A secret's failing validation quotes nothing it printed.
    let secret = ops::File::new(&conf)
        .content("token=s3cr3t\n")
        .secret()
        .validate("grep ^port %s");
    let e = op_error(t.call(ops::file, (secret, Mode::Apply)).unwrap_err());
    assert!(!e.contains("s3cr3t") && e.contains("not shown"), "{e}");

    if host == "cs-deb12" {
        let sshd = root.join("sshd_config");
        t.call(
            ops::file,
            (ops::File::new(&sshd).content("Port 22\n"), Mode::Apply),
        )
        .unwrap();
        let set = |line: &str| {
            ops::Line::new(&sshd, line)
                .matching("^#?PermitRootLogin")
                .validate("/usr/sbin/sshd -t -f %s")
        };
        check_then_apply(&t, &root, &|m| {
            t.call(ops::line, (set("PermitRootLogin no"), m))
        });
        let e = op_error(
            t.call(ops::line, (set("PermitRootLogin perhaps"), Mode::Apply))
                .unwrap_err(),
        );
        assert!(
            e.contains("fails validation") && e.contains("perhaps"),
            "{e}"
        );
        assert_eq!(read(&t, &sshd), "Port 22\nPermitRootLogin no\n");
    }
}

#[test]
fn validated_content_on_a_local_tunnel() {
    lines_blocks_and_files_land_validated("localhost");
}

#[test]
fn validated_content_on_debian() {
    lines_blocks_and_files_land_validated("cs-deb12");
}

#[test]
fn validated_content_on_busybox() {
    lines_blocks_and_files_land_validated("cs-busybox");
}
