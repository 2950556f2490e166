//! `ops::authorized_key` and `ops::git` against real hosts: a user made
//! for the test on Debian 12 and busybox (and check mode only for this
//! machine's own user), and checkouts of a repository put on the host, on
//! the local tunnel and Debian 12; busybox has no git and says so.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command as Local;

use chopsticks::ops::{self, AuthorizedKey, ChangedWhen, Git, Mode};
use chopsticks::{Source, Tunnel};
use chopsticks_tests::*;

use crate::steps::{check_then_apply, connect, listing};

const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBGmTj2Gi1bG2AQiAMvxTYXgPaE4Pk2pU6wbDr1UFtNO";
const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOTVeKOf6SyZw0rAAkp0YfcfpBqzIYZUKRDtrJS6AP3r";

/// What `argv` prints on the host (it must succeed).
fn sh(t: &Tunnel, argv: &[&str]) -> String {
    let run = ops::Command::new(argv.iter().copied()).changed_when(ChangedWhen::Always);
    let out = t
        .call(ops::command, (run, Mode::Apply))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    out.output.unwrap().stdout
}

fn keys_are_managed_on(host: &str) {
    let _one = crate::system_state();
    let t = connect(host);
    let name = format!("csk{}", std::process::id() % 100_000);
    let home = PathBuf::from(format!("/home/{name}"));
    let key = |k: &str| format!("ssh-ed25519 {k} {name}@test");
    let spec = || AuthorizedKey::new(&name, key(ED));
    let call = |spec: AuthorizedKey, m: Mode| t.call(ops::authorized_key, (spec, m));

    // A user an earlier step creates: noted in check, refused by apply.
    let noted = call(spec(), Mode::Check).unwrap();
    assert!(
        noted
            .summary
            .contains(&format!("needs user {name}, which must exist by then")),
        "{noted:?}"
    );
    let err = call(spec(), Mode::Apply).unwrap_err().to_string();
    assert!(err.contains(&format!("there is no user {name}")), "{err}");
    // Malformed keys are refused before anything is looked at.
    let bad = AuthorizedKey::new(&name, format!("ssh-rsa {ED}"));
    let err = call(bad, Mode::Check).unwrap_err().to_string();
    assert!(err.contains("its data is a ssh-ed25519 key"), "{err}");

    let user = ops::User::new(&name).shell("/bin/sh");
    t.call(ops::user, (user, Mode::Apply)).unwrap();

    // Present: ~/.ssh 0700 and the file 0600, both the user's.
    let added = check_then_apply(&t, &home, &|m| call(spec(), m));
    assert!(added.summary.contains("create"), "{added:?}");
    let ssh = format!("{}/.ssh", home.display());
    let file = format!("{ssh}/authorized_keys");
    let modes = sh(&t, &["stat", "-c", "%a %U %G", &ssh, &file]);
    assert_eq!(modes, format!("700 {name} {name}\n600 {name} {name}\n"));
    assert_eq!(sh(&t, &["cat", &file]), format!("{}\n", key(ED)));

    // Other lines keep their order; a key with other options is updated
    // in place; a loose mode is fixed.
    let mine = format!("# mine\n{}\nssh-ed25519 {ED} old comment\n", key(ED2));
    let written = ops::File::new(&file)
        .content(&mine)
        .mode(0o644)
        .owner(&name);
    t.call(ops::file, (written, Mode::Apply)).unwrap();
    let with_options = || spec().options(r#"from="10.0.0.0/8",no-pty"#);
    let updated = check_then_apply(&t, &home, &|m| call(with_options(), m));
    assert!(
        updated.summary.contains("update ssh-ed25519 SHA256:"),
        "{updated:?}"
    );
    assert!(updated.summary.contains("mode 0644"), "{updated:?}");
    let want = format!(
        "# mine\n{}\nfrom=\"10.0.0.0/8\",no-pty {}\n",
        key(ED2),
        key(ED)
    );
    assert_eq!(sh(&t, &["cat", &file]), want);
    assert!(sh(&t, &["stat", "-c", "%a", &file]).starts_with("600"));

    // Exclusive: only the key given stays (and the comment line).
    let only = || AuthorizedKey::keys(&name, [key(ED)]).exclusive();
    check_then_apply(&t, &home, &|m| call(only(), m));
    assert_eq!(sh(&t, &["cat", &file]), format!("# mine\n{}\n", key(ED)));

    // Absent.
    let gone = check_then_apply(&t, &home, &|m| call(spec().absent(), m));
    assert!(gone.summary.contains("remove"), "{gone:?}");
    assert_eq!(sh(&t, &["cat", &file]), "# mine\n");

    // A link at ~/.ssh is refused.
    t.call(remove_tree, (ssh.clone().into_bytes(),)).unwrap();
    let link = ops::Symlink::new(&ssh, "/tmp");
    t.call(ops::symlink, (link, Mode::Apply)).unwrap();
    let err = call(spec(), Mode::Check).unwrap_err().to_string();
    assert!(err.contains("is a symbolic link"), "{err}");

    t.call(ops::user, (ops::User::new(&name).absent(), Mode::Apply))
        .unwrap();
    t.call(remove_tree, (home.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn keys_on_debian() {
    keys_are_managed_on("cs-deb12");
}

#[test]
fn keys_on_busybox() {
    keys_are_managed_on("cs-busybox");
}

/// This machine's own user: check mode only, which must leave `~/.ssh`
/// as it was.
#[test]
fn keys_in_check_mode_for_this_user() {
    let t = connect("localhost");
    let me = sh(&t, &["id", "-un"]);
    let me = me.trim();
    let home = std::env::var("HOME").unwrap();
    let ssh = PathBuf::from(home).join(".ssh");
    let spec = AuthorizedKey::new(me, format!("ssh-ed25519 {ED2} cs-check-only"));
    let before = listing(&t, &ssh);
    let planned = t.call(ops::authorized_key, (spec, Mode::Check)).unwrap();
    assert!(planned.changed, "{planned:?}");
    assert!(
        planned.summary.contains("add ssh-ed25519 SHA256:"),
        "{planned:?}"
    );
    assert_eq!(listing(&t, &ssh), before);
}

/// Runs the controller's git in `dir`.
fn local_git(dir: &Path, args: &[&str]) -> String {
    let out = Local::new("git")
        .args([
            "-c",
            "user.name=cs",
            "-c",
            "user.email=cs@test",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs on this machine (the tests need it)");
    assert!(out.status.success(), "git {args:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A commit of `content` to `a.txt` in `work`, pushed to `bare`; its id.
fn commit(work: &Path, content: &str) -> String {
    std::fs::write(work.join("a.txt"), content).unwrap();
    local_git(work, &["add", "a.txt"]);
    local_git(work, &["commit", "-q", "-m", content]);
    local_git(work, &["push", "-q", "origin", "main"]);
    local_git(work, &["rev-parse", "HEAD"])
}

fn checkouts_follow_the_repository_on(host: &str) {
    let t = connect(host);
    let tag = format!("{}-{}", host, std::process::id());
    let here = std::env::temp_dir().join(format!("cs-git-src-{tag}"));
    let _ = std::fs::remove_dir_all(&here);
    std::fs::create_dir_all(here.join("work")).unwrap();
    let (work, bare) = (here.join("work"), here.join("upstream.git"));
    local_git(&here, &["init", "-q", "--bare", bare.to_str().unwrap()]);
    local_git(&work, &["init", "-q"]);
    local_git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    let first = commit(&work, "1\n");
    local_git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    local_git(&work, &["push", "-q", "origin", "v1"]);
    local_git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);

    let root = PathBuf::from(format!("/tmp/cs-git-{tag}"));
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
    let upstream = root.join("upstream.git");
    let put = || t.put(Source::path(&bare), &upstream).run().unwrap();
    t.call(ops::directory, (ops::Directory::new(&root), Mode::Apply))
        .unwrap();
    put();
    let dest = root.join("app");
    let repo = upstream.display().to_string();
    let call = |spec: Git, m: Mode| t.call(ops::git, (spec, m));
    let head = || {
        sh(
            &t,
            &["git", "-C", dest.to_str().unwrap(), "rev-parse", "HEAD"],
        )
    };

    // Clone at the remote's HEAD.
    let cloned = check_then_apply(&t, &root, &|m| call(Git::new(&repo, &dest), m));
    assert!(
        cloned.summary.contains(&format!(
            "clone {repo} into {} at {first} (branch main)",
            dest.display()
        )),
        "{cloned:?}"
    );
    assert_eq!(head().trim(), first);

    // Upstream moves: fetched, moved; the plan names both commits.
    let second = commit(&work, "2\n");
    put();
    let branch = || Git::new(&repo, &dest).branch("main");
    let moved = check_then_apply(&t, &root, &|m| call(branch(), m));
    assert!(
        moved.summary.contains(&format!("{first} -> {second}")),
        "{moved:?}"
    );
    assert_eq!(head().trim(), second);

    // A changed tracked file refuses the update, unless forced.
    let third = commit(&work, "3\n");
    put();
    let edited = ops::File::new(dest.join("a.txt")).content("local\n");
    t.call(ops::file, (edited, Mode::Apply)).unwrap();
    let err = call(branch(), Mode::Check).unwrap_err().to_string();
    assert!(err.contains("1 changed tracked file(s): a.txt"), "{err}");
    assert!(err.contains("force()"), "{err}");
    let forced = check_then_apply(&t, &root, &|m| call(branch().force(), m));
    assert!(forced.summary.contains("discarding"), "{forced:?}");
    assert_eq!(head().trim(), third);
    assert_eq!(
        sh(&t, &["cat", dest.join("a.txt").to_str().unwrap()]),
        "3\n"
    );

    // A tag (annotated: its commit), then a commit by its id.
    check_then_apply(&t, &root, &|m| call(Git::new(&repo, &dest).tag("v1"), m));
    assert_eq!(head().trim(), first);
    let pinned = || Git::new(&repo, &dest).commit(&second);
    check_then_apply(&t, &root, &|m| call(pinned(), m));
    assert_eq!(head().trim(), second);

    // Detached at the commit a branch points to: moved onto the branch,
    // not "unchanged" because the commit is the same.
    check_then_apply(&t, &root, &|m| {
        call(Git::new(&repo, &dest).commit(&third), m)
    });
    let on_branch = check_then_apply(&t, &root, &|m| call(branch(), m));
    assert!(
        on_branch
            .summary
            .contains(&format!("{third} (detached) -> {third} (branch main)")),
        "{on_branch:?}"
    );
    let on = sh(
        &t,
        &["git", "-C", dest.to_str().unwrap(), "symbolic-ref", "HEAD"],
    );
    assert_eq!(on.trim(), "refs/heads/main");

    // An untracked file in the way of a new one: git keeps it, and so
    // does the update, unless forced.
    std::fs::write(work.join("b.txt"), "upstream\n").unwrap();
    local_git(&work, &["add", "b.txt"]);
    let fourth = commit(&work, "4\n");
    put();
    let mine = dest.join("b.txt");
    t.call(
        ops::file,
        (ops::File::new(&mine).content("mine\n"), Mode::Apply),
    )
    .unwrap();
    let err = call(branch(), Mode::Apply).unwrap_err().to_string();
    assert!(
        err.contains("in the way") && err.contains("force()"),
        "{err}"
    );
    assert_eq!(sh(&t, &["cat", mine.to_str().unwrap()]), "mine\n");
    assert_eq!(head().trim(), third);
    call(branch().force(), Mode::Apply).unwrap();
    assert_eq!(head().trim(), fourth);
    assert_eq!(sh(&t, &["cat", mine.to_str().unwrap()]), "upstream\n");

    // A relative repository path is refused (clone and fetch would read
    // it from different directories).
    let err = call(Git::new("upstream.git", &dest), Mode::Check).unwrap_err();
    assert!(err.to_string().contains("relative path"), "{err}");

    // What the remote lacks, and what git could read as an option.
    let err = call(Git::new(&repo, &dest).branch("nope"), Mode::Check).unwrap_err();
    assert!(err.to_string().contains("has no branch nope"), "{err}");
    let err = call(
        Git::new(&repo, &dest).branch("--upload-pack=x"),
        Mode::Check,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a branch name"), "{err}");

    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
    std::fs::remove_dir_all(&here).unwrap();
}

#[test]
fn git_on_the_local_tunnel() {
    checkouts_follow_the_repository_on("localhost");
}

#[test]
fn git_on_debian() {
    checkouts_follow_the_repository_on("cs-deb12");
}

/// A dumb-HTTP server of the bare repository `dir` on loopback that
/// wants the user `deploy` with the password `s3cr3t`; its base URL.
fn serve_with_login(dir: PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            let path = path.split('?').next().unwrap_or("").to_owned();
            let mut authorized = false;
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header.trim().is_empty() => break,
                    // base64 of deploy:s3cr3t
                    Ok(_) => {
                        authorized |= header.trim() == "Authorization: Basic ZGVwbG95OnMzY3IzdA=="
                    }
                }
            }
            let file = dir.join(path.trim_start_matches('/'));
            let mut conn = &conn;
            let _ = match (authorized, std::fs::read(&file)) {
                (false, _) => conn.write_all(
                    b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cs\"\r\n\
                      Content-Length: 0\r\n\r\n",
                ),
                (true, Ok(body)) if !path.contains("..") => conn
                    .write_all(
                        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .as_bytes(),
                    )
                    .and_then(|_| conn.write_all(&body)),
                (true, _) => conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            };
        }
    });
    base
}

/// A password in the URL reaches git through its environment only: the
/// clone works, and neither `.git/config` nor the summary holds it.
#[test]
fn a_password_in_the_url_stays_out_of_git_config() {
    let t = connect("localhost");
    let tag = format!("login-{}", std::process::id());
    let here = std::env::temp_dir().join(format!("cs-git-src-{tag}"));
    let _ = std::fs::remove_dir_all(&here);
    std::fs::create_dir_all(here.join("work")).unwrap();
    let (work, bare) = (here.join("work"), here.join("upstream.git"));
    local_git(&here, &["init", "-q", "--bare", bare.to_str().unwrap()]);
    local_git(&work, &["init", "-q"]);
    local_git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    let first = commit(&work, "1\n");
    local_git(&bare, &["update-server-info"]);
    let base = serve_with_login(bare.clone());
    let url = base.replace("http://", "http://deploy:s3cr3t@");
    let root = here.join("host");
    std::fs::create_dir_all(&root).unwrap();
    let dest = root.join("app");
    let spec = Git::new(&url, &dest).branch("main");
    let made = check_then_apply(&t, &root, &|m| t.call(ops::git, (spec.clone(), m)));
    assert!(!made.summary.contains("s3cr3t"), "{made:?}");
    assert!(made.summary.contains("deploy:***@"), "{made:?}");
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "1\n");
    let config = std::fs::read_to_string(dest.join(".git/config")).unwrap();
    assert!(!config.contains("s3cr3t"), "{config}");
    assert!(config.contains("http://deploy@127.0.0.1"), "{config}");
    assert_eq!(local_git(&dest, &["rev-parse", "HEAD"]), first);
    // Without the password git cannot read it, and says so without a prompt.
    let err = t
        .call(
            ops::git,
            (
                Git::new(&base, root.join("other")).branch("main"),
                Mode::Check,
            ),
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&here).unwrap();
}

#[test]
fn git_on_busybox_says_it_is_missing() {
    let t = connect("cs-busybox");
    let spec = Git::new("/tmp/cs-none.git", "/tmp/cs-none");
    let err = t
        .call(ops::git, (spec, Mode::Check))
        .unwrap_err()
        .to_string();
    assert!(err.contains("git is not installed on"), "{err}");
    assert!(err.contains("install it first"), "{err}");
}
