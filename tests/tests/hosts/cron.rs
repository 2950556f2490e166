//! `ops::cron` on real hosts: jobs in `/etc/cron.d` on cs-deb12 with a
//! stand-in for a cron daemon, refused on hosts no daemon of which reads
//! `/etc/cron.d` (cs-deb12 without it, cs-busybox, this machine); another's
//! file there left alone; jobs in a user's crontab through busybox's
//! `crontab` on cs-busybox; the error where a host has no `crontab`
//! (cs-deb12). Every name is this run's own (`cs-test-PID`), and removed at
//! the end.

use std::path::{Path, PathBuf};

use chopsticks::ops::{self, Cron, Mode};
use chopsticks::Tunnel;

use crate::steps::{check_then_apply, connect, listing, read};

fn job_name() -> String {
    format!("cs-test-{}", std::process::id())
}

fn cron(t: &Tunnel, spec: Cron, mode: Mode) -> chopsticks::Result<ops::Change> {
    t.call(ops::cron, (spec, mode))
}

/// Creates a job, changes its schedule and environment, removes it.
fn cron_d_job_lives_and_goes(host: &str) {
    let t = connect(host);
    let name = job_name();
    let path = PathBuf::from("/etc/cron.d").join(&name);
    let header = format!(
        "# Managed by chopsticks (ops::cron): the job {name}. Changes here are overwritten.\n"
    );
    let job = |schedule: &str| Cron::new(&name, schedule, "/bin/true >/dev/null 2>&1");

    let made = check_then_apply(&t, &path, &|m| {
        cron(&t, job("*/5 * * * *").env("MAILTO", ""), m)
    });
    assert_eq!(
        made.summary,
        format!("create {}: `*/5 * * * *` as root", path.display()),
        "{host}"
    );
    let want = format!("{header}MAILTO=\"\"\n*/5 * * * * root /bin/true >/dev/null 2>&1\n");
    assert_eq!(read(&t, &path), want, "{host}");
    assert!(made.diff.unwrap().contains("+*/5 * * * * root"), "{host}");
    let entries = listing(&t, &path);
    assert_eq!((entries.len(), entries[0].1, entries[0].2), (1, 'f', 0o644));

    // Another schedule, another environment: the file is rewritten.
    let path_env = "PATH=/usr/local/bin:/usr/bin:/bin";
    let changed = check_then_apply(&t, &path, &|m| {
        cron(
            &t,
            job("0  3 * * mon")
                .env("MAILTO", "")
                .env("PATH", &path_env[5..]),
            m,
        )
    });
    assert_eq!(
        changed.summary,
        format!("{}: the job: `0 3 * * mon` as root", path.display())
    );
    let diff = changed.diff.unwrap();
    assert!(
        diff.contains("-*/5 * * * * root") && diff.contains("+0 3 * * mon root"),
        "{diff}"
    );
    assert_eq!(
        read(&t, &path),
        format!("{header}MAILTO=\"\"\n{path_env}\n0 3 * * mon root /bin/true >/dev/null 2>&1\n")
    );

    let gone = check_then_apply(&t, &path, &|m| cron(&t, job("").absent(), m));
    assert_eq!(gone.summary, format!("remove {}", path.display()));
    assert!(listing(&t, &path).is_empty(), "{host}: the file stayed");

    // A secret job: no diff, a file root alone reads.
    let secret = Cron::new(
        &name,
        "@hourly",
        "curl -H 'token: s3cr3t' http://127.0.0.1/",
    )
    .secret();
    let made = check_then_apply(&t, &path, &|m| cron(&t, secret.clone(), m));
    assert_eq!(made.diff, None);
    assert!(!format!("{made:?}").contains("s3cr3t"), "{made:?}");
    assert!(read(&t, &path).contains("@hourly root curl -H 'token: s3cr3t'"));
    let entries = listing(&t, &path);
    assert_eq!(entries[0].2, 0o600, "{host}: a secret job's file is 0600");
    cron(&t, secret.absent(), Mode::Apply).unwrap();
    assert!(listing(&t, &path).is_empty(), "{host}: the file stayed");
}

/// The stand-in for a cron daemon that reads `/etc/cron.d` (no test host
/// has one): a script at `/usr/sbin/cron`, removed when dropped.
struct StandIn<'t>(&'t Tunnel, PathBuf);

impl<'t> StandIn<'t> {
    fn new(t: &'t Tunnel) -> StandIn<'t> {
        let path = PathBuf::from("/usr/sbin/cron");
        assert!(listing(t, &path).is_empty(), "{path:?} is there already");
        let file = ops::File::new(&path)
            .content("#!/bin/sh\nexit 0\n")
            .mode(0o755);
        t.call(ops::file, (file, Mode::Apply)).unwrap();
        StandIn(t, path)
    }
}

impl Drop for StandIn<'_> {
    fn drop(&mut self) {
        let gone = ops::File::new(&self.1).absent();
        let _ = self.0.call(ops::file, (gone, Mode::Apply));
    }
}

#[test]
fn cron_d_jobs_where_a_daemon_reads_them() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let _cron = StandIn::new(&t);
    cron_d_job_lives_and_goes("cs-deb12");
}

/// Whether this machine has a cron daemon that reads `/etc/cron.d`.
fn here_a_daemon_reads_cron_d() -> bool {
    [
        "/usr/sbin/cron",
        "/usr/sbin/crond",
        "/sbin/cron",
        "/sbin/crond",
    ]
    .iter()
    .filter_map(|p| std::fs::canonicalize(p).ok())
    .any(|p| !p.to_string_lossy().contains("busybox"))
}

#[test]
fn cron_d_jobs_are_refused_where_no_daemon_reads_them() {
    let _one = crate::system_state();
    let mut hosts = vec!["cs-deb12", "cs-busybox"];
    if !here_a_daemon_reads_cron_d() {
        hosts.push("localhost");
    }
    for host in hosts {
        let t = connect(host);
        let name = job_name();
        let path = PathBuf::from("/etc/cron.d").join(&name);
        let job = Cron::new(&name, "@daily", "true");
        for m in [Mode::Check, Mode::Apply] {
            let err = cron(&t, job.clone(), m).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "ops::cron {}: no cron daemon here reads /etc/cron.d: install cron, or \
                     use for_user",
                    path.display()
                )),
                "{host}: {err}"
            );
            // Nothing to remove: nothing is refused.
            let gone = cron(&t, job.clone().absent(), m).unwrap();
            assert!(!gone.changed, "{host}: {gone:?}");
        }
        assert!(listing(&t, &path).is_empty(), "{host}: a refused job wrote");
    }
}

#[test]
fn a_file_in_cron_d_ops_cron_did_not_make_is_left_alone() {
    let _one = crate::system_state();
    // Debian's e2fsprogs puts e2scrub_all there.
    for host in ["cs-deb12", "cs-busybox"] {
        let t = connect(host);
        let path = Path::new("/etc/cron.d/e2scrub_all");
        let before = read(&t, path);
        let job = Cron::new("e2scrub_all", "@daily", "true");
        for spec in [job.clone(), job.absent()] {
            for m in [Mode::Check, Mode::Apply] {
                let err = cron(&t, spec.clone(), m).unwrap_err().to_string();
                assert!(
                    err.contains("ops::cron /etc/cron.d/e2scrub_all: is not a file ops::cron made")
                        && err.contains("give the job another name"),
                    "{host}: {err}"
                );
            }
        }
        assert_eq!(read(&t, path), before, "{host}");
    }
}

#[test]
fn bad_specs_are_refused_before_anything_runs() {
    let t = connect("localhost");
    let name = format!("{}-bad", job_name());
    let path = PathBuf::from("/etc/cron.d").join(&name);
    for (spec, says) in [
        (
            Cron::new("a.b", "@daily", "true"),
            "\"a.b\": not a job name",
        ),
        (
            Cron::new(&name, "* * * 13 *", "true"),
            "the month field \"13\"",
        ),
        (Cron::new(&name, "@daily", "date +%F"), "write `\\%`"),
        (Cron::new(&name, "@daily", r"echo a\\%b"), "write `\\%`"),
    ] {
        for m in [Mode::Check, Mode::Apply] {
            let err = cron(&t, spec.clone(), m).unwrap_err().to_string();
            assert!(err.contains("ops::cron ") && err.contains(says), "{err}");
        }
    }
    assert!(
        listing(&t, &path).is_empty(),
        "a refused spec wrote something"
    );
}

const SPOOL: &str = "/var/spool/cron/crontabs";

/// The directories of busybox's crontab spool this test had to make.
fn make_spool(t: &Tunnel) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for dir in ["/var/spool/cron", SPOOL] {
        let dir = Path::new(dir);
        if listing(t, dir).is_empty() {
            t.call(ops::directory, (ops::Directory::new(dir), Mode::Apply))
                .unwrap();
            made.push(dir.to_owned());
        }
    }
    made.reverse();
    made
}

#[test]
fn a_users_crontab_keeps_their_lines_and_our_marked_job() {
    let _one = crate::system_state();
    let t = connect("cs-busybox");
    let which = t
        .call(
            ops::command,
            (
                ops::Command::new(["which", "crontab"]).changed_when(ops::ChangedWhen::Always),
                Mode::Apply,
            ),
        )
        .unwrap();
    assert!(
        which.output.unwrap().stdout.trim().ends_with("/crontab"),
        "cs-busybox has no crontab applet: rebuild the test images (tests/hosts/up.sh)"
    );
    let made_dirs = make_spool(&t);
    let user = format!("cs-cron-{}", std::process::id());
    t.call(ops::user, (ops::User::new(&user), Mode::Apply))
        .unwrap();
    let tab = Path::new(SPOOL).join(&user);
    let theirs = "# their job\nAPI_TOKEN=their-t0ken\n0 1 * * * /bin/theirs\n";
    t.call(
        ops::file,
        (
            ops::File::new(&tab).content(theirs).mode(0o600),
            Mode::Apply,
        ),
    )
    .unwrap();

    let name = job_name();
    let job = |schedule: &str| Cron::new(&name, schedule, "/bin/true").for_user(&user);
    let added = check_then_apply(&t, &tab, &|m| cron(&t, job("*/10 * * * *"), m));
    assert_eq!(
        added.summary,
        format!("crontab of {user}: add the job {name} (`*/10 * * * *`)")
    );
    let diff = added.diff.unwrap();
    assert!(diff.contains(&format!("+# chopsticks: {name}")), "{diff}");
    assert!(
        !diff.contains("their-t0ken") && !diff.contains("/bin/theirs"),
        "the diff shows their lines: {diff}"
    );
    let marked = |schedule: &str| format!("{theirs}# chopsticks: {name}\n{schedule} /bin/true\n");
    assert_eq!(read(&t, &tab), marked("*/10 * * * *"));

    let updated = check_then_apply(&t, &tab, &|m| cron(&t, job("@daily"), m));
    assert_eq!(
        updated.summary,
        format!("crontab of {user}: update the job {name} (`@daily`)")
    );
    assert_eq!(read(&t, &tab), marked("@daily"));
    let diff = updated.diff.unwrap();
    assert!(
        diff.contains("-*/10 * * * * /bin/true") && diff.contains("+@daily /bin/true"),
        "{diff}"
    );
    assert!(!diff.contains("their-t0ken"), "{diff}");

    let removed = check_then_apply(&t, &tab, &|m| cron(&t, job("").absent(), m));
    assert_eq!(
        removed.summary,
        format!("crontab of {user}: remove the job {name}")
    );
    assert_eq!(read(&t, &tab), theirs, "their lines are kept as they were");

    // A user an earlier step creates: noted in check mode.
    let nobody = format!("cs-cron-none-{}", std::process::id());
    let planned = cron(&t, job("@daily").for_user(&nobody), Mode::Check);
    let planned = planned.unwrap();
    assert!(
        planned.changed && planned.summary.contains("which must exist by then"),
        "{planned:?}"
    );
    let err = cron(&t, job("@daily").for_user(&nobody), Mode::Apply).unwrap_err();
    assert!(err.to_string().contains("create it first"), "{err}");
    let gone = cron(&t, job("").for_user(&nobody).absent(), Mode::Check).unwrap();
    assert!(!gone.changed, "{gone:?}");

    t.call(ops::file, (ops::File::new(&tab).absent(), Mode::Apply))
        .unwrap();
    t.call(ops::user, (ops::User::new(&user).absent(), Mode::Apply))
        .unwrap();
    t.call(
        ops::directory,
        (
            ops::Directory::new(format!("/home/{user}")).absent(),
            Mode::Apply,
        ),
    )
    .unwrap();
    for dir in made_dirs {
        t.call(
            ops::directory,
            (ops::Directory::new(dir).absent(), Mode::Apply),
        )
        .unwrap();
    }
}

#[test]
fn a_host_without_crontab_says_so() {
    let t = connect("cs-deb12");
    let job = Cron::new(job_name(), "@daily", "true").for_user("root");
    for m in [Mode::Check, Mode::Apply] {
        let err = cron(&t, job.clone(), m).unwrap_err().to_string();
        assert!(
            err.starts_with("cs-deb12: ")
                && err.contains("ops::cron crontab of root: this host has no `crontab` program")
                && err.contains("/etc/cron.d"),
            "{err}"
        );
    }
}
