//! `ops::apt_repository` against the signed flat repository the images
//! hold at `/srv/cs-signed` (tests/hosts/apt-repo.sh), which no source
//! names: its key read from the host as a user fetches a vendor's, the
//! files read back on their own, apt asked what it then offers. Each test
//! removes the repository again.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use chopsticks::ops::{self, AptRepository, Change, Mode};
use chopsticks::Tunnel;

use chopsticks_tests::remove_tree;

use crate::steps::{check_then_apply, connect};

const SOURCES: &str = "/etc/apt/sources.list.d/cs-signed.sources";
const ASC: &str = "/etc/apt/keyrings/cs-signed.asc";
const GPG: &str = "/etc/apt/keyrings/cs-signed.gpg";
const MARKER: &str =
    "# Managed by chopsticks (ops::apt_repository): changes made here are replaced.\n";

/// A file's bytes and mode on the host, read with std alone; `None` when
/// there is none.
#[chopsticks::remote]
fn file_on_host(path: String) -> Option<(Vec<u8>, u32)> {
    let meta = std::fs::symlink_metadata(&path).ok()?;
    Some((std::fs::read(&path).ok()?, meta.mode() & 0o7777))
}

/// Removes what the tests may leave: the repository's files and lists.
#[chopsticks::remote]
fn forget_cs_signed() {
    for path in [SOURCES, ASC, GPG] {
        let _ = std::fs::remove_file(path);
    }
    // A test puts an (empty) directory there.
    let _ = std::fs::remove_dir(SOURCES);
    remove_lists();
}

/// Forgets the repository when made and when dropped (a failed test too).
struct Clean<'t>(&'t Tunnel);

impl<'t> Clean<'t> {
    fn new(t: &'t Tunnel) -> Clean<'t> {
        t.call(forget_cs_signed, ()).unwrap();
        Clean(t)
    }
}

impl Drop for Clean<'_> {
    fn drop(&mut self) {
        let _ = self.0.call(forget_cs_signed, ());
    }
}

fn on_host(t: &Tunnel, path: &str) -> Option<(Vec<u8>, u32)> {
    t.call(file_on_host, (path.to_owned(),)).unwrap()
}

fn repo(key: &[u8]) -> AptRepository {
    AptRepository::new(
        "cs-signed",
        ["file:/srv/cs-signed"],
        ["./"],
        Vec::<String>::new(),
    )
    .key(key.to_vec())
}

fn apply(t: &Tunnel, spec: &AptRepository, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::apt_repository, (spec.clone(), mode))
}

/// What apt offers of cs-signed-hello.
fn policy(t: &Tunnel) -> String {
    let cmd = ops::Command::new(["apt-cache", "policy", "cs-signed-hello"])
        .changed_when(ops::ChangedWhen::Never);
    let out = t.call(ops::command, (cmd, Mode::Apply)).unwrap();
    out.output.unwrap().stdout
}

fn sources(key_path: &str) -> String {
    format!("{MARKER}Types: deb\nURIs: file:/srv/cs-signed\nSuites: ./\nSigned-By: {key_path}\n")
}

/// What apt offers of cs-hello, from the images' other (unsigned) source.
fn other_policy(t: &Tunnel) -> String {
    let cmd = ops::Command::new(["apt-cache", "policy", "cs-hello"])
        .changed_when(ops::ChangedWhen::Never);
    let out = t.call(ops::command, (cmd, Mode::Apply)).unwrap();
    out.output.unwrap().stdout
}

/// Adds the repository with its armored key (the keyrings directory made
/// when missing), so that apt offers its package; a second run neither
/// changes nor refreshes anything; a binary key replaces the armored one.
fn adds_a_signed_repository(host: &str) {
    let _one = crate::system_state();
    let t = connect(host);
    let _clean = Clean::new(&t);
    let key = on_host(&t, "/srv/cs-signed/key.asc")
        .expect("the image has the key")
        .0;
    assert!(
        !policy(&t).contains("Candidate: 1.0"),
        "known before it is added"
    );
    // The directory for keys is made when missing (Debian 11 has none).
    let keyrings = Path::new("/etc/apt/keyrings");
    t.call(remove_tree, (b"/etc/apt/keyrings".to_vec(),))
        .unwrap();

    let spec = repo(&key);
    let applied = check_then_apply(&t, Path::new("/etc/apt"), &|mode| apply(&t, &spec, mode));
    assert_eq!(
        applied.summary,
        format!(
            "create {GPG}, create {SOURCES} (and the directory /etc/apt/keyrings); then its \
             package lists refreshed"
        )
    );
    assert!(
        applied
            .diff
            .as_deref()
            .unwrap_or("")
            .contains("+Suites: ./"),
        "{applied:?}"
    );
    assert_eq!(
        on_host(&t, SOURCES),
        Some((sources(GPG).into_bytes(), 0o644))
    );
    // Stored as binary packets: the armored key decoded.
    let binary = on_host(&t, "/srv/cs-signed/key.gpg").unwrap().0;
    assert_eq!(on_host(&t, GPG), Some((binary.clone(), 0o644)));
    let dir = t
        .call(file_on_host, (keyrings.display().to_string(),))
        .unwrap();
    assert!(dir.is_none(), "a directory reads as no file");
    let mode = ops::Command::new(["stat", "-c", "%a", "/etc/apt/keyrings"])
        .changed_when(ops::ChangedWhen::Never);
    let out = t.call(ops::command, (mode, Mode::Apply)).unwrap();
    assert_eq!(out.output.unwrap().stdout.trim(), "755");
    let offered = policy(&t);
    assert!(offered.contains("Candidate: 1.0"), "{offered}");
    assert!(
        offered.contains("file:/srv/cs-signed ./ Packages"),
        "{offered}"
    );
    // ops::package sees it: it would install it.
    let install = ops::Package::new(["cs-signed-hello"]);
    let would = t.call(ops::package, (install, Mode::Check)).unwrap();
    assert!(
        would.summary.contains("install cs-signed-hello 1.0"),
        "{would:?}"
    );

    // The other sources' lists are kept by the refresh.
    let other = other_policy(&t);
    assert!(other.contains("file:/srv/cs-repo ./ Packages"), "{other}");
    // Unchanged, it is not refreshed...
    let again = apply(&t, &spec, Mode::Apply).unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(
        again.summary,
        format!("{SOURCES} and its key {GPG} as wanted")
    );
    // ... unless its lists are gone (a run cut short before its refresh).
    t.call(forget_lists, ()).unwrap();
    assert!(!policy(&t).contains("Candidate: 1.0"));
    let spec_ = spec.clone();
    let refreshed = check_then_apply(&t, Path::new("/etc/apt"), &|mode| apply(&t, &spec_, mode));
    assert_eq!(
        refreshed.summary,
        format!("{SOURCES} and its key {GPG} as wanted; its package lists missing: refreshed")
    );
    assert!(policy(&t).contains("Candidate: 1.0"));

    // The vendor's binary key is the same key: nothing to change.
    let spec = repo(&binary);
    assert!(!apply(&t, &spec, Mode::Apply).unwrap().changed);
    // An armored key an earlier version wrote (NAME.asc) goes, after the
    // file no longer names it.
    let earlier = ops::File::new(ASC).content(key.clone()).mode(0o644);
    t.call(ops::file, (earlier, Mode::Apply)).unwrap();
    let applied = check_then_apply(&t, Path::new("/etc/apt"), &|mode| apply(&t, &spec, mode));
    assert_eq!(
        applied.summary,
        format!("remove {ASC}; then its package lists refreshed")
    );
    assert_eq!(on_host(&t, ASC), None);
    assert!(policy(&t).contains("Candidate: 1.0"));

    // absent() removes the file and the key.
    let gone = spec.clone().absent();
    let removed = check_then_apply(&t, Path::new("/etc/apt"), &|mode| apply(&t, &gone, mode));
    assert_eq!(removed.summary, format!("remove {SOURCES}, remove {GPG}"));
    assert_eq!((on_host(&t, SOURCES), on_host(&t, GPG)), (None, None));
    assert!(!policy(&t).contains("Candidate: 1.0"));
}

/// Removes cs-signed's package lists only.
#[chopsticks::remote]
fn forget_lists() {
    remove_lists();
}

fn remove_lists() {
    if let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") {
        for entry in dir.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("_srv_cs-signed_")
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[test]
fn adds_a_signed_repository_deb12() {
    adds_a_signed_repository("cs-deb12");
}

#[test]
fn adds_a_signed_repository_systemd() {
    adds_a_signed_repository("cs-systemd");
}

/// A key that did not sign the repository: apply fails quoting apt, and
/// the files are as they were before (none; or the working ones).
#[test]
fn a_wrong_key_fails_and_puts_back_what_was_there() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let _clean = Clean::new(&t);
    let wrong = on_host(&t, "/srv/cs-signed/wrong-key.asc").unwrap().0;
    let right = on_host(&t, "/srv/cs-signed/key.asc").unwrap().0;
    let binary = on_host(&t, "/srv/cs-signed/key.gpg").unwrap().0;

    let check = apply(&t, &repo(&wrong), Mode::Check).unwrap();
    assert!(check.changed, "{check:?}");
    let err = apply(&t, &repo(&wrong), Mode::Apply)
        .unwrap_err()
        .to_string();
    for says in [
        "ops::apt_repository cs-signed: apt-get update (of this repository only) exited with \
         status 100: ",
        "NO_PUBKEY",
        "the key did not sign this repository: give the key its vendor signs it with; the \
         repository's files are put back as they were",
    ] {
        assert!(err.contains(says), "{says:?} not in {err}");
    }
    assert_eq!((on_host(&t, SOURCES), on_host(&t, GPG)), (None, None));

    // A file of the same name written by hand is replaced, and said so.
    let hand = "Types: deb\nURIs: file:/srv/cs-signed\nSuites: ./\nTrusted: yes\n";
    let write = ops::File::new(SOURCES).content(hand).mode(0o600);
    t.call(ops::file, (write, Mode::Apply)).unwrap();
    let err = apply(&t, &repo(&wrong), Mode::Apply)
        .unwrap_err()
        .to_string();
    assert!(err.contains("put back as they were"), "{err}");
    assert_eq!(
        on_host(&t, SOURCES),
        Some((hand.as_bytes().to_vec(), 0o600))
    );
    assert_eq!(on_host(&t, GPG), None);
    let took = apply(&t, &repo(&right), Mode::Apply).unwrap();
    assert_eq!(
        took.summary,
        format!(
            "create {GPG}, replace {SOURCES} (a file not written by ops::apt_repository); then \
             its package lists refreshed"
        )
    );
    assert!(took.diff.unwrap().contains("-Trusted: yes"));

    // Working, then given a wrong key: the working files stay.
    let err = apply(&t, &repo(&wrong), Mode::Apply)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NO_PUBKEY"), "{err}");
    assert_eq!(
        on_host(&t, SOURCES),
        Some((sources(GPG).into_bytes(), 0o644))
    );
    assert_eq!(on_host(&t, GPG), Some((binary.clone(), 0o644)));
    assert!(!apply(&t, &repo(&right), Mode::Apply).unwrap().changed);

    // An armored key of an earlier version, removed by the change, is put
    // back when the refresh fails.
    let earlier = ops::File::new(ASC).content(right.clone()).mode(0o644);
    t.call(ops::file, (earlier, Mode::Apply)).unwrap();
    let err = apply(&t, &repo(&wrong), Mode::Apply)
        .unwrap_err()
        .to_string();
    assert!(err.contains("put back as they were"), "{err}");
    assert_eq!(on_host(&t, ASC), Some((right.clone(), 0o644)));
    assert_eq!(on_host(&t, GPG), Some((binary.clone(), 0o644)));
    let fixed = apply(&t, &repo(&right), Mode::Apply).unwrap();
    assert_eq!(
        fixed.summary,
        format!("remove {ASC}; then its package lists refreshed")
    );

    // A key apt's own user cannot read (0600) is made readable again.
    let hidden = ops::File::new(GPG).mode(0o600).owner("nobody");
    t.call(ops::file, (hidden, Mode::Apply)).unwrap();
    let spec = repo(&right);
    let fixed = check_then_apply(&t, Path::new("/etc/apt"), &|mode| apply(&t, &spec, mode));
    assert_eq!(
        fixed.summary,
        format!("{GPG}: mode 0600 -> 0644, owner 65534:0 -> 0:0; then its package lists refreshed")
    );
    assert_eq!(on_host(&t, GPG), Some((binary.clone(), 0o644)));

    // A URI apt cannot fetch from: the same.
    let nowhere =
        AptRepository::new("cs-signed", ["file:/srv/nowhere"], ["./"], [""; 0]).key(right.clone());
    let err = apply(&t, &nowhere, Mode::Apply).unwrap_err().to_string();
    assert!(err.contains("does not have a Release file"), "{err}");
    assert!(err.contains("check the URIs and suites"), "{err}");
    assert_eq!(
        on_host(&t, SOURCES),
        Some((sources(GPG).into_bytes(), 0o644))
    );
}

/// What cannot be a name, a URI, a suite or a key is refused before
/// anything is read, in check mode too.
#[test]
fn bad_names_uris_suites_and_keys_are_refused() {
    let t = connect("cs-deb12");
    let key =
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n";
    let with = |name: &str, uri: &str, suite: &str, components: &[&str]| {
        AptRepository::new(name, [uri], [suite], components.to_vec()).key(key.to_vec())
    };
    let uri = "file:/srv/cs-signed";
    for (spec, says) in [
        (with("-o", uri, "./", &[]), "not a repository name"),
        (with("../x", uri, "./", &[]), "not a repository name"),
        (
            with("x", "file:/srv\nSigned-By: /x", "./", &[]),
            "blank or a control",
        ),
        (with("x", "/srv/cs-signed", "./", &[]), "is not a URI"),
        (
            with("x", "https://u:secret@example.org/debian", "./", &[]),
            "/etc/apt/auth.conf.d",
        ),
        (
            with("x", uri, "./\nTrusted: yes", &[]),
            "blank or a control",
        ),
        (with("x", uri, "./", &["main"]), "take no components"),
        (
            with("x", uri, "bookworm", &[]),
            "give at least one component",
        ),
        (
            with("x", uri, "bookworm", &["main contrib"]),
            "blank or a control",
        ),
        (
            with("x", uri, "./", &[]).key(&b"ssh-ed25519 AAAA"[..]),
            "neither an ASCII-armored",
        ),
        (
            with("x", uri, "./", &[]).key(&b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n"[..]),
            "secret key",
        ),
        (
            with("x", uri, "./", &[]).types(["rpm"]),
            "neither deb nor deb-src",
        ),
    ] {
        for mode in [Mode::Check, Mode::Apply] {
            let err = apply(&t, &spec, mode).unwrap_err().to_string();
            assert!(err.contains(": ops::apt_repository "), "{err}");
            assert!(err.contains(says), "{says:?} not in {err}");
        }
    }
    // A long bad name is shown cut short.
    let long = format!("{}/", "x".repeat(5000));
    let err = apply(&t, &with(&long, uri, "./", &[]), Mode::Check)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a repository name") && err.len() < 600,
        "{err}"
    );

    // absent() with a directory where its file goes: refused in the plan.
    let _one = crate::system_state();
    let _clean = Clean::new(&t);
    let dir = ops::Directory::new(SOURCES);
    t.call(ops::directory, (dir, Mode::Apply)).unwrap();
    let gone = with("cs-signed", uri, "./", &[]).absent();
    for mode in [Mode::Check, Mode::Apply] {
        let err = apply(&t, &gone, mode).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}

/// The repository, then a package of it, in one call: what a host's plan
/// does.
#[chopsticks::remote]
fn repository_then_package(
    repository: AptRepository,
    package: ops::Package,
    mode: Mode,
) -> ops::Report {
    let mut report = ops::Report::new();
    report.run("repository", || ops::apt_repository(repository, mode));
    report.run("package", || ops::package(package, mode));
    report
}

/// A package of the repository installs in the same run that adds it:
/// the refresh made its lists known.
#[test]
fn its_package_installs_in_the_same_run() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let _clean = Clean::new(&t);
    let hello = ops::Package::new(["cs-signed-hello"]);
    let _removed = Removed(&t, hello.clone().absent());
    let key = on_host(&t, "/srv/cs-signed/key.asc").unwrap().0;
    let plan = (repo(&key), hello, Mode::Apply);
    let report = t.call(repository_then_package, plan.clone()).unwrap();
    assert_eq!(report.failed, None, "{report}");
    assert_eq!(report.changed(), 2, "{report}");
    let text = report.to_string();
    assert!(text.contains("then its package lists refreshed"), "{text}");
    assert!(text.contains("install cs-signed-hello 1.0"), "{text}");
    let run = ops::Command::new(["cs-signed-hello"]).changed_when(ops::ChangedWhen::Never);
    let out = t.call(ops::command, (run, Mode::Apply)).unwrap();
    assert_eq!(out.output.unwrap().stdout, "cs-signed-hello 1.0\n");
    let again = t.call(repository_then_package, plan).unwrap();
    assert_eq!(again.changed(), 0, "{again}");
}

/// Applies a package spec (its removal) when dropped.
struct Removed<'t>(&'t Tunnel, ops::Package);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.0.call(ops::package, (self.1.clone(), Mode::Apply));
    }
}

/// Holds the lock of apt's lists (as `apt-get update` takes it: fcntl) in
/// the agent for `secs` seconds; whether it got it.
#[chopsticks::remote]
fn hold_lists_lock(secs: u64) -> bool {
    use std::os::fd::AsRawFd as _;
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open("/var/lib/apt/lists/lock")
    else {
        return false;
    };
    // SAFETY: a zeroed flock is valid; fcntl reads it only.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: the fd is open, the flock lives across the call.
    let held = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } == 0;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        drop(file);
    });
    held
}

/// Another package manager holding the lists' lock is waited for (apt's
/// own DPkg::Lock::Timeout does not cover it).
#[test]
fn waits_for_the_lists_lock() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let _clean = Clean::new(&t);
    let key = on_host(&t, "/srv/cs-signed/key.asc").unwrap().0;
    let start = std::time::Instant::now();
    assert!(t.call(hold_lists_lock, (6,)).unwrap());
    let applied = apply(&t, &repo(&key), Mode::Apply).unwrap();
    assert!(applied.changed, "{applied:?}");
    assert!(start.elapsed().as_secs() >= 5, "{:?}", start.elapsed());
    assert!(policy(&t).contains("Candidate: 1.0"));
}
