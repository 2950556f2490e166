//! `ops::mount` on real hosts: tmpfs filesystems mounted, remounted,
//! unmounted and removed on cs-systemd (root with `CAP_SYS_ADMIN`), read
//! back with `findmnt` (the kernel's table and `/etc/fstab` as libmount
//! reads them) and the file itself; on cs-deb12 (no `CAP_SYS_ADMIN`) the
//! entry alone, and mounting refused saying why. Mount points are this
//! run's own (`/mnt/cs-mount-test-PID...`); `/etc/fstab` is put back and
//! every mount point unmounted and removed at the end, also when a test
//! fails.

use std::path::{Path, PathBuf};

use chopsticks::ops::{self, Change, Mode, Mount};
use chopsticks::Tunnel;

use crate::steps::{check_then_apply, connect, read};

const FSTAB: &str = "/etc/fstab";

fn mount(t: &Tunnel, spec: &Mount, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::mount, (spec.clone(), mode))
}

/// What `sh -c script` prints, with `args` as `$1`...; it must succeed.
fn sh(t: &Tunnel, script: &str, args: &[&str]) -> String {
    let argv = ["sh", "-c", script, "sh"]
        .into_iter()
        .chain(args.iter().copied());
    let run = ops::Command::new(argv).changed_when(ops::ChangedWhen::Never);
    let change = t.call(ops::command, (run, Mode::Apply)).unwrap();
    change.output.unwrap().stdout
}

/// What is mounted on `path`, as `findmnt` reads the kernel's table:
/// `SOURCE="..." FSTYPE="..." OPTIONS="..."` a line, empty when nothing.
fn kernel(t: &Tunnel, path: &Path) -> String {
    let script = "findmnt --kernel -n -P -o SOURCE,FSTYPE,OPTIONS --mountpoint \"$1\" || true";
    sh(t, script, &[&path.display().to_string()])
}

/// The entry for `path` in `/etc/fstab`, as `findmnt` (libmount) reads it.
fn entry(t: &Tunnel, path: &Path) -> String {
    let script = "findmnt --fstab -n -P -o SOURCE,FSTYPE,OPTIONS,FREQ,PASSNO --mountpoint \"$1\" \
                  || true";
    sh(t, script, &[&path.display().to_string()])
}

/// This run's own directory under `/mnt`.
fn base(test: &str) -> PathBuf {
    PathBuf::from(format!("/mnt/cs-mount-test-{}-{test}", std::process::id()))
}

/// Puts `/etc/fstab` back as it was, unmounts what is mounted on the
/// mount points and removes the test's directory, when dropped (also when
/// a test fails).
struct Restore<'t> {
    t: &'t Tunnel,
    fstab: String,
    base: PathBuf,
    points: Vec<PathBuf>,
}

impl<'t> Restore<'t> {
    fn new(t: &'t Tunnel, base: &Path, points: &[&Path]) -> Restore<'t> {
        Restore {
            t,
            fstab: read(t, Path::new(FSTAB)),
            base: base.to_owned(),
            points: points.iter().map(|p| p.to_path_buf()).collect(),
        }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let back = ops::File::new(FSTAB).content(self.fstab.as_str());
        self.t.call(ops::file, (back, Mode::Apply)).unwrap();
        for point in &self.points {
            let script = "while mountpoint -q -- \"$1\"; do umount -l -- \"$1\" || exit 1; done";
            sh(self.t, script, &[&point.display().to_string()]);
        }
        sh(
            self.t,
            "rm -rf -- \"$1\"",
            &[&self.base.display().to_string()],
        );
        assert_eq!(
            read(self.t, Path::new(FSTAB)),
            self.fstab,
            "fstab not restored"
        );
    }
}

#[test]
fn a_tmpfs_is_mounted_remounted_unmounted_and_removed_systemd() {
    let _one = crate::system_state();
    let t = connect("cs-systemd");
    let base = base("tmpfs");
    let path = base.join("data");
    let _restore = Restore::new(&t, &base, &[&path]);
    let original = read(&t, Path::new(FSTAB));
    let p = path.display();
    let spec = |options: &[&str]| Mount::new(&path, "cs-test", "tmpfs").options(options.to_vec());

    // Mounted: the directories created, mounted, the entry added.
    let made = check_then_apply(&t, Path::new("/mnt"), &|m| {
        mount(&t, &spec(&["size=1m", "mode=0755"]), m)
    });
    assert_eq!(
        made.summary,
        format!(
            "create the directories {}, {p}; mount cs-test (tmpfs, size=1m,mode=0755) on {p}; \
             {FSTAB}: add cs-test {p} tmpfs size=1m,mode=0755 0 0",
            base.display()
        )
    );
    assert!(made.diff.unwrap().contains(&format!("+cs-test {p} tmpfs")));
    let line = format!("cs-test {p} tmpfs size=1m,mode=0755 0 0\n");
    assert_eq!(read(&t, Path::new(FSTAB)), format!("{original}{line}"));
    assert_eq!(
        kernel(&t, &path),
        "SOURCE=\"cs-test\" FSTYPE=\"tmpfs\" OPTIONS=\"rw,relatime,size=1024k,mode=755\"\n"
    );
    assert_eq!(
        entry(&t, &path),
        "SOURCE=\"cs-test\" FSTYPE=\"tmpfs\" OPTIONS=\"size=1m,mode=0755\" FREQ=\"0\" \
         PASSNO=\"0\"\n"
    );

    // The same options in another order, twice: nothing to do.
    let same = mount(
        &t,
        &spec(&["mode=0755", "size=1m", "mode=0755"]),
        Mode::Apply,
    )
    .unwrap();
    assert_eq!(
        (same.changed, same.summary.as_str()),
        (false, format!("{p}: in {FSTAB}, mounted").as_str())
    );

    // Other options: the entry updated in place, the filesystem remounted.
    let n = original.lines().count() + 1;
    let bigger = check_then_apply(&t, Path::new("/mnt"), &|m| {
        mount(&t, &spec(&["size=2m", "mode=0755"]), m)
    });
    assert_eq!(
        bigger.summary,
        format!(
            "remount {p} with size=2m,mode=0755 (its options changed); {FSTAB} line {n}: \
             cs-test {p} tmpfs size=2m,mode=0755 0 0"
        )
    );
    assert!(
        kernel(&t, &path).contains("size=2048k"),
        "{}",
        kernel(&t, &path)
    );
    assert_eq!(
        read(&t, Path::new(FSTAB)),
        format!("{original}cs-test {p} tmpfs size=2m,mode=0755 0 0\n")
    );

    // Unmounted: the entry kept, nothing mounted; the directory stays.
    let want = spec(&["size=2m", "mode=0755"]);
    let off = check_then_apply(&t, Path::new("/mnt"), &|m| {
        mount(&t, &want.clone().unmounted(), m)
    });
    assert_eq!(off.summary, format!("unmount {p} (cs-test, tmpfs)"));
    assert_eq!(off.diff, None);
    assert_eq!(kernel(&t, &path), "");
    assert!(entry(&t, &path).contains("size=2m"));
    let again = mount(&t, &want.clone().unmounted(), Mode::Check).unwrap();
    assert_eq!(again.summary, format!("{p}: in {FSTAB}, not mounted"));

    // Mounted again: the directory is there, so only mounted.
    let on = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &want, m));
    assert_eq!(
        on.summary,
        format!("mount cs-test (tmpfs, size=2m,mode=0755) on {p}")
    );
    assert!(kernel(&t, &path).contains("size=2048k"));

    // Present: the entry changes, the mounted filesystem is left alone.
    let later = spec(&["size=3m"]).dump(1).pass(2).present();
    let entered = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &later, m));
    assert_eq!(
        entered.summary,
        format!("{FSTAB} line {n}: cs-test {p} tmpfs size=3m 1 2; mounted, left as it is")
    );
    assert_eq!(
        entry(&t, &path),
        "SOURCE=\"cs-test\" FSTYPE=\"tmpfs\" OPTIONS=\"size=3m\" FREQ=\"1\" PASSNO=\"2\"\n"
    );
    assert!(kernel(&t, &path).contains("size=2048k"));

    // The same entry with `defaults` among its options and a trailing
    // comment (libmount reads six fields): kept as it is.
    let commented = format!("{original}cs-test {p} tmpfs defaults,size=3m 1 2 # kept\n");
    let put = |text: &str| {
        t.call(
            ops::file,
            (ops::File::new(FSTAB).content(text), Mode::Apply),
        )
        .unwrap();
    };
    put(&commented);
    let kept = mount(&t, &later, Mode::Apply).unwrap();
    assert!(!kept.changed, "{}", kept.summary);
    assert_eq!(read(&t, Path::new(FSTAB)), commented);

    // The mount point spelled with `//` and a final `/`: that line is
    // the entry, rewritten in place, not a second one added.
    let base_shown = base.display();
    put(&format!(
        "{original}cs-test {base_shown}//data/ tmpfs size=3m 1 2\n"
    ));
    let respelled = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &later, m));
    assert_eq!(
        respelled.summary,
        format!("{FSTAB} line {n}: cs-test {p} tmpfs size=3m 1 2; mounted, left as it is")
    );
    assert_eq!(
        read(&t, Path::new(FSTAB)),
        format!("{original}cs-test {p} tmpfs size=3m 1 2\n")
    );

    // Absent: unmounted, the entry gone, the file as it was; the
    // directory kept.
    let gone = Mount::new(&path, "", "").absent();
    let removed = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &gone, m));
    assert_eq!(
        removed.summary,
        format!("unmount {p} (cs-test, tmpfs); {FSTAB}: remove line {n}, {p}'s entry")
    );
    assert_eq!(read(&t, Path::new(FSTAB)), original);
    assert_eq!(
        (kernel(&t, &path), entry(&t, &path)),
        (String::new(), String::new())
    );
    let still = sh(&t, "test -d \"$1\" && echo dir", &[&p.to_string()]);
    assert_eq!(still, "dir\n");
    let unchanged = mount(&t, &gone, Mode::Apply).unwrap();
    assert_eq!(
        unchanged.summary,
        format!("{p}: not in {FSTAB}, not mounted")
    );
}

/// A mount point with a space and a tab: escaped in `/etc/fstab` as
/// fstab(5) says (libmount reads it back), found in the kernel's table.
#[test]
fn a_mount_point_with_blanks_is_escaped_systemd() {
    let _one = crate::system_state();
    let t = connect("cs-systemd");
    let base = base("blanks");
    let path = base.join("a b\tc");
    let _restore = Restore::new(&t, &base, &[&path]);
    let original = read(&t, Path::new(FSTAB));
    let p = path.display();
    let spec = Mount::new(&path, "cs test", "tmpfs")
        .options(["size=1m"])
        .backup();
    let made = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &spec, m));
    // The old /etc/fstab kept beside it, as asked.
    assert!(made.summary.contains("the old content kept as a backup"));
    let kept = made.backup.clone().expect("a backup of /etc/fstab");
    assert_eq!(read(&t, Path::new(&kept)), original);
    sh(&t, "rm -f -- \"$1\"", &[&kept]);
    assert!(made
        .summary
        .contains(&format!("mount cs test (tmpfs, size=1m) on {p}")));
    let escaped = format!(
        r"cs\040test {}/a\040b\011c tmpfs size=1m 0 0",
        base.display()
    );
    assert_eq!(read(&t, Path::new(FSTAB)), format!("{original}{escaped}\n"));
    assert_eq!(
        entry(&t, &path),
        "SOURCE=\"cs test\" FSTYPE=\"tmpfs\" OPTIONS=\"size=1m\" FREQ=\"0\" PASSNO=\"0\"\n"
    );
    assert!(kernel(&t, &path).starts_with("SOURCE=\"cs test\" FSTYPE=\"tmpfs\""));
    let gone = Mount::new(&path, "", "").absent();
    check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &gone, m));
    assert_eq!(read(&t, Path::new(FSTAB)), original);
    assert_eq!(kernel(&t, &path), "");
}

/// What cannot be a mount is refused in both modes, before anything is
/// read or changed; so are two entries for one mount point, naming both.
#[test]
fn bad_mounts_are_refused_saying_what_to_do_systemd() {
    let _one = crate::system_state();
    let t = connect("cs-systemd");
    let base = base("bad");
    let good = base.join("x");
    let _restore = Restore::new(&t, &base, &[&good]);
    let original = read(&t, Path::new(FSTAB));
    let cases = [
        (Mount::new("mnt/x", "tmpfs", "tmpfs"), "an absolute path"),
        (
            Mount::new("/mnt/../etc", "tmpfs", "tmpfs"),
            "an absolute path",
        ),
        (
            Mount::new(&good, "-oremount", "tmpfs"),
            "not starting with -",
        ),
        (Mount::new(&good, "tmpfs", "-t"), "not a filesystem type"),
        (
            Mount::new(&good, "tmpfs", "tmpfs").options(["-x"]),
            "not starting with -",
        ),
        (
            Mount::new(&good, "tmpfs", "tmpfs").options(["size=1m,ro"]),
            "without blanks, commas",
        ),
        (
            Mount::new(&good, "tmpfs", "tmpfs").options(["a b"]),
            "without blanks, commas",
        ),
    ];
    for (spec, says) in cases {
        for mode in [Mode::Check, Mode::Apply] {
            let err = mount(&t, &spec, mode).unwrap_err().to_string();
            assert!(
                err.contains("ops::mount") && err.contains(says),
                "{spec:?}: {err}"
            );
        }
    }

    // What does not mount: what mount said, and the entry not written.
    let bogus = Mount::new(&good, "cs-test", "tmpfs").options(["cs_bogus"]);
    let err = mount(&t, &bogus, Mode::Apply).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "/mount -t tmpfs -o cs_bogus -- cs-test {}` exited",
            good.display()
        )) && err.contains("wrong fs type, bad option")
            && err.contains(&format!("{FSTAB} is left as it was")),
        "{err}"
    );
    assert_eq!(read(&t, Path::new(FSTAB)), original);
    assert_eq!(kernel(&t, &good), "");

    // Options a remount refuses: the entry is not written, the error says
    // so and how to apply them, and the next apply tries again.
    let small = Mount::new(&good, "cs-test", "tmpfs").options(["size=1m"]);
    mount(&t, &small, Mode::Apply).unwrap();
    let before = read(&t, Path::new(FSTAB));
    let refused = small.clone().options(["size=cs"]);
    let err = mount(&t, &refused, Mode::Apply).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "/mount --options-source=disable -o remount,size=cs -- {}` exited",
            good.display()
        )) && err.contains(&format!("keeps its options and {FSTAB} is left as it was"))
            && err.contains("unmounted(), then mounted()"),
        "{err}"
    );
    assert!(kernel(&t, &good).contains("size=1024k"));
    assert_eq!(read(&t, Path::new(FSTAB)), before);
    let retry = mount(&t, &refused, Mode::Check).unwrap();
    assert!(
        retry.changed
            && retry
                .summary
                .starts_with(&format!("remount {}", good.display())),
        "{}",
        retry.summary
    );
    assert!(mount(&t, &refused, Mode::Apply).is_err());
    assert_eq!(read(&t, Path::new(FSTAB)), before);
    let gone = Mount::new(&good, "", "").absent();
    mount(&t, &gone, Mode::Apply).unwrap();
    assert_eq!(read(&t, Path::new(FSTAB)), original);

    // Two entries for one mount point: both lines named, nothing changed.
    let p = good.display();
    let twice = format!("{original}tmpfs {p} tmpfs defaults 0 0\n# two\nnone {p} tmpfs ro 0 0\n");
    t.call(
        ops::file,
        (ops::File::new(FSTAB).content(twice.as_str()), Mode::Apply),
    )
    .unwrap();
    let n = original.lines().count() + 1;
    let err = mount(&t, &Mount::new(&good, "tmpfs", "tmpfs"), Mode::Apply)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "line {n} (\"tmpfs {p} tmpfs defaults 0 0\") and line {} (\"none {p} tmpfs ro 0 0\")",
            n + 2
        )),
        "{err}"
    );
    assert_eq!(read(&t, Path::new(FSTAB)), twice);
    assert_eq!(kernel(&t, &good), "");
}

/// Without `CAP_SYS_ADMIN` (a container's root): the entry is managed,
/// mounting refused in both modes, saying why and what to do.
#[test]
fn without_cap_sys_admin_only_the_entry_is_managed_deb12() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let base = base("nocap");
    let path = base.join("data");
    let _restore = Restore::new(&t, &base, &[&path]);
    let original = read(&t, Path::new(FSTAB));
    let p = path.display();
    let spec = Mount::new(&path, "cs-test", "tmpfs").options(["size=1m"]);

    let entered = check_then_apply(&t, Path::new("/mnt"), &|m| {
        mount(&t, &spec.clone().present(), m)
    });
    assert_eq!(
        entered.summary,
        format!("{FSTAB}: add cs-test {p} tmpfs size=1m 0 0; not mounted, left so")
    );
    assert_eq!(
        read(&t, Path::new(FSTAB)),
        format!("{original}cs-test {p} tmpfs size=1m 0 0\n")
    );

    for mode in [Mode::Check, Mode::Apply] {
        let err = mount(&t, &spec, mode).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "ops::mount {p}: cannot mount it here: this program runs as root but without \
                 CAP_SYS_ADMIN"
            )) && err.contains("present()"),
            "{err}"
        );
        assert!(err.contains("cs-deb12"), "the error names the host: {err}");
    }
    let missing = sh(&t, "test -e \"$1\" || echo missing", &[&p.to_string()]);
    assert_eq!(
        missing, "missing\n",
        "a refused mount created its directory"
    );

    // Not mounted: the entry goes without unmounting.
    let gone = Mount::new(&path, "", "").absent();
    let removed = check_then_apply(&t, Path::new("/mnt"), &|m| mount(&t, &gone, m));
    let n = original.lines().count() + 1;
    assert_eq!(
        removed.summary,
        format!("{FSTAB}: remove line {n}, {p}'s entry")
    );
    assert_eq!(read(&t, Path::new(FSTAB)), original);
}
