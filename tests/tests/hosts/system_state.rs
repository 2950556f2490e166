//! Kernel settings and the host name, on the containers (whose
//! `/proc/sys` is read-only and whose name their runtime sets: the files
//! are managed, the summary says the running value could not be set) and
//! on this machine (without changing its kernel or its name). Each test
//! puts back what it changed.

use std::path::{Path, PathBuf};

use chopsticks::ops::{self, Change, Hostname, Mode, Sysctl};
use chopsticks::Tunnel;
use chopsticks_tests::*;

use crate::steps::{check_then_apply, connect, listing, read};

const SYSCTL_D: &str = "/etc/sysctl.d";

/// A settings file of this test run's own.
fn own_file(test: &str) -> String {
    format!("90-cs-{test}-{}.conf", std::process::id())
}

fn remove(t: &Tunnel, path: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    t.call(remove_tree, (path.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

/// Puts files back as they were when it was made, when dropped (also
/// when a test fails): their old text, or no file.
struct Restore<'t> {
    t: &'t Tunnel,
    files: Vec<(PathBuf, Option<String>)>,
}

impl<'t> Restore<'t> {
    fn new(t: &'t Tunnel, paths: &[&Path]) -> Restore<'t> {
        let files = paths
            .iter()
            .map(|p| {
                (
                    p.to_path_buf(),
                    t.call(read_file, (p.display().to_string(),)).ok(),
                )
            })
            .collect();
        Restore { t, files }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for (path, content) in &self.files {
            match content {
                None => remove(self.t, path),
                Some(content) => {
                    let back = ops::File::new(path).content(content.as_str());
                    self.t.call(ops::file, (back, Mode::Apply)).unwrap();
                    assert_eq!(
                        &read(self.t, path),
                        content,
                        "{} not restored",
                        path.display()
                    );
                }
            }
        }
    }
}

fn sysctl(t: &Tunnel, spec: &Sysctl, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::sysctl, (spec.clone(), mode))
}

fn sysctl_in_a_container(host: &str) {
    let _one = crate::system_state();
    let t = connect(host);
    let name = own_file("sysctl");
    let path = Path::new(SYSCTL_D).join(&name);
    let _restore = Restore::new(&t, &[&path]);
    let running = read(&t, Path::new("/proc/sys/net/ipv4/tcp_rmem"));
    assert_ne!(running.split_whitespace().nth(1), Some("87380"), "{host}");

    let want = Sysctl::new("net/ipv4/tcp_rmem", "4096 87380 6291456").file(&name);
    let step = |m| sysctl(&t, &want, m);
    let applied = check_then_apply(&t, Path::new(SYSCTL_D), &step);
    assert!(applied.changed);
    assert!(
        applied.summary.starts_with(&format!(
            "create {} with net.ipv4.tcp_rmem = 4096 87380 6291456; the running value \
             (4096 131072 33554432) cannot be set here: /proc/sys is read-only",
            path.display()
        )),
        "{host}: {}",
        applied.summary
    );
    assert_eq!(read(&t, &path), "net.ipv4.tcp_rmem = 4096 87380 6291456\n");
    assert_eq!(
        read(&t, Path::new("/proc/sys/net/ipv4/tcp_rmem")),
        running,
        "{host}: the running value changed"
    );
    let again = sysctl(&t, &want, Mode::Apply).unwrap();
    assert!(again.summary.contains("cannot be set here"), "{again:?}");

    // The running value, spaced otherwise, is the same value (written
    // as given); the file's other lines stay.
    let same = Sysctl::new("net.ipv4.tcp_rmem", "4096  131072\t33554432").file(&name);
    let step = |m| sysctl(&t, &same, m);
    let set = check_then_apply(&t, Path::new(SYSCTL_D), &step);
    assert_eq!(
        set.summary,
        format!(
            "{}: set net.ipv4.tcp_rmem = 4096  131072\t33554432; the running value is the same",
            path.display()
        )
    );
    let forward = Sysctl::new("net.ipv4.ip_forward", "1").file(&name);
    let step = |m| sysctl(&t, &forward, m);
    check_then_apply(&t, Path::new(SYSCTL_D), &step);
    assert_eq!(
        read(&t, &path),
        "net.ipv4.tcp_rmem = 4096  131072\t33554432\nnet.ipv4.ip_forward = 1\n"
    );

    // With the running value left alone, a key this kernel does not have
    // (yet: its module loads later) is only checked for its spelling.
    let later = Sysctl::new("net.cs_test.not_loaded_yet", "1").file(&name);
    let checked = sysctl(&t, &later.clone().runtime(false), Mode::Check).unwrap();
    assert!(checked.changed, "{checked:?}");
    let err = sysctl(&t, &later, Mode::Check).unwrap_err().to_string();
    assert!(err.contains("this kernel has no such key"), "{err}");

    // What a key or value cannot be is refused before anything is read.
    for bad in [
        Sysctl::new("net.ipv4.no_such_key", "1").file(&name),
        Sysctl::new("net/../../etc/passwd", "1").file(&name),
        Sysctl::new("net.ipv4.ip_forward", "1\nkernel.panic = 1").file(&name),
        Sysctl::new("net.ipv4.ip_forward", "1").file("../passwd"),
    ] {
        let err = sysctl(&t, &bad, Mode::Check).unwrap_err().to_string();
        assert!(err.contains("ops::sysctl"), "{err}");
    }
}

/// A file read after ours at boot that sets the key otherwise would undo
/// it: refused, naming that file and line, and nothing written.
#[test]
fn sysctl_refuses_a_setting_a_later_file_overrides_deb12() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    let name = own_file("sysctl-lost");
    let path = Path::new(SYSCTL_D).join(&name);
    let later = Path::new(SYSCTL_D).join(format!("zz-cs-test-{}.conf", std::process::id()));
    let _restore = Restore::new(&t, &[&path, &later]);
    let put = ops::File::new(&later).content("# a later file\nvm.swappiness = 33\n");
    t.call(ops::file, (put, Mode::Apply)).unwrap();

    let lost = Sysctl::new("vm.swappiness", "10").file(&name);
    for mode in [Mode::Check, Mode::Apply] {
        let err = sysctl(&t, &lost, mode).unwrap_err().to_string();
        let says = format!(
            "ops::sysctl vm.swappiness = 10: {} line 2 sets vm.swappiness = 33, and is read \
                 after {} at boot (the last file read wins): remove that line from {}, or \
                 manage the setting in that file",
            later.display(),
            path.display(),
            later.display()
        );
        assert!(err.contains(&says), "{err}");
    }
    let missing = t.call(read_file, (path.display().to_string(),));
    assert!(missing.is_err(), "{} was written", path.display());
    // The same value in the later file is no conflict.
    let put = ops::File::new(&later).content("vm.swappiness = 10\n");
    t.call(ops::file, (put, Mode::Apply)).unwrap();
    let step = |m| sysctl(&t, &lost, m);
    check_then_apply(&t, Path::new(SYSCTL_D), &step);
    assert_eq!(read(&t, &path), "vm.swappiness = 10\n");
}

#[test]
fn sysctl_manages_the_file_where_proc_sys_is_read_only_deb12() {
    sysctl_in_a_container("cs-deb12");
}

#[test]
fn sysctl_manages_the_file_where_proc_sys_is_read_only_busybox() {
    sysctl_in_a_container("cs-busybox");
}

/// On this machine: the file alone, then the running value set to what
/// it is already (so nothing in the kernel changes); the file removed.
#[test]
fn sysctl_on_this_machine_changes_no_running_value() {
    let t = connect("localhost");
    let name = own_file("sysctl-local");
    let path = Path::new(SYSCTL_D).join(&name);
    let _restore = Restore::new(&t, &[&path]);
    let proc = Path::new("/proc/sys/net/ipv4/tcp_rmem");
    let running = std::fs::read_to_string(proc).unwrap();
    let spaced = running.split_whitespace().collect::<Vec<_>>().join("   ");

    let file_only = Sysctl::new("net.ipv4.tcp_rmem", &spaced)
        .file(&name)
        .runtime(false);
    let step = |m| sysctl(&t, &file_only, m);
    let applied = check_then_apply(&t, Path::new(SYSCTL_D), &step);
    assert!(
        applied
            .summary
            .ends_with("; the running value is left as it is"),
        "{applied:?}"
    );
    assert_eq!(read(&t, &path), format!("net.ipv4.tcp_rmem = {spaced}\n"));

    let both = Sysctl::new("net.ipv4.tcp_rmem", &spaced).file(&name);
    let same = sysctl(&t, &both, Mode::Check).unwrap();
    assert_eq!(sysctl(&t, &both, Mode::Apply).unwrap(), same);
    assert_eq!(
        (same.changed, same.summary),
        (
            false,
            format!(
                "net.ipv4.tcp_rmem = {spaced} in {} and running",
                path.display()
            )
        )
    );
    assert_eq!(std::fs::read_to_string(proc).unwrap(), running);

    // A key that root cannot write either (0444) is one the kernel does
    // not let be written, whoever runs: no advice to run as root.
    let read_only = Sysctl::new("fs.file-nr", "1 2 3").file(&name);
    let checked = sysctl(&t, &read_only, Mode::Check).unwrap();
    assert!(
        checked
            .summary
            .contains("cannot be set here: the kernel does not let this key be written here"),
        "{checked:?}"
    );
}

/// On this machine (root, `/proc/sys` writable): a value the kernel
/// refuses, or reads back otherwise, is refused before the file is
/// written, so that it does not fail again at every boot. The kernel
/// ends as it was: `yes` is refused, `0N` is `N`, put back as it was.
#[test]
fn sysctl_writes_the_file_only_once_the_kernel_took_the_value() {
    let t = connect("localhost");
    let name = own_file("sysctl-refused");
    let path = Path::new(SYSCTL_D).join(&name);
    let _restore = Restore::new(&t, &[&path]);
    let proc = Path::new("/proc/sys/net/ipv4/ip_forward");
    let running = std::fs::read_to_string(proc).unwrap();
    let padded = format!("0{}", running.trim());
    for (value, says) in [
        ("yes", "the kernel refused the value"),
        (padded.as_str(), "but reads it back as"),
    ] {
        let spec = Sysctl::new("net.ipv4.ip_forward", value).file(&name);
        let checked = sysctl(&t, &spec, Mode::Check).unwrap();
        if !checked.summary.contains("running value") || checked.summary.contains("cannot") {
            eprintln!("skipped: the running value cannot be set here: {checked:?}");
            return;
        }
        let err = sysctl(&t, &spec, Mode::Apply).unwrap_err().to_string();
        let target = format!("ops::sysctl net.ipv4.ip_forward = {value}: ");
        assert!(err.contains(&target) && err.contains(says), "{err}");
        assert!(
            err.contains("give the value as the kernel shows it"),
            "{err}"
        );
        let missing = t.call(read_file, (path.display().to_string(),));
        assert!(missing.is_err(), "{} was written: {err}", path.display());
        assert_eq!(std::fs::read_to_string(proc).unwrap(), running);
    }
}

fn hostname(t: &Tunnel, spec: &Hostname, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::hostname, (spec.clone(), mode))
}

fn hostname_in_a_container(host: &str) {
    let _one = crate::system_state();
    let t = connect(host);
    let (etc_hostname, etc_hosts) = (Path::new("/etc/hostname"), Path::new("/etc/hosts"));
    let restore = Restore::new(&t, &[etc_hostname, etc_hosts]);
    let old_hosts = read(&t, etc_hosts);
    let running = || read(&t, Path::new("/proc/sys/kernel/hostname"));
    let uname = running();

    let want = Hostname::new("cs-renamed.example.test");
    let before = (listing(&t, etc_hostname), listing(&t, etc_hosts));
    let checked = hostname(&t, &want, Mode::Check).unwrap();
    assert!(checked.changed, "{checked:?}");
    assert_eq!(
        (listing(&t, etc_hostname), listing(&t, etc_hosts)),
        before,
        "check mode changed a file"
    );
    let step = |m| hostname(&t, &want, m);
    let applied = check_then_apply(&t, etc_hosts, &step);
    assert_eq!(
        applied.summary,
        format!(
            "/etc/hostname: cs-renamed.example.test; /etc/hosts: 127.0.1.1 \
             cs-renamed.example.test cs-renamed; the running name ({}) cannot be set here: \
             this program lacks CAP_SYS_ADMIN (in a container, its runtime names it: docker \
             run --hostname); it applies at the next boot",
            uname.trim()
        )
    );
    // Both are bind mounts: written in place, the mounts still there.
    assert_eq!(read(&t, etc_hostname), "cs-renamed.example.test\n");
    let hosts = read(&t, etc_hosts);
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost\n127.0.1.1\tcs-renamed.example.test\tcs-renamed\n"),
        "{hosts}"
    );
    assert_eq!(
        hosts.replace("127.0.1.1\tcs-renamed.example.test\tcs-renamed\n", ""),
        old_hosts
    );
    assert_eq!(running(), uname, "the running name changed");

    let err = hostname(&t, &Hostname::new("-n"), Mode::Check).unwrap_err();
    assert!(err.to_string().contains("ops::hostname -n: "), "{err}");

    drop(restore);
    assert_eq!(
        read(&t, etc_hosts),
        old_hosts,
        "{host}: /etc/hosts not restored"
    );
}

#[test]
fn hostname_manages_the_files_where_the_name_cannot_be_set_deb12() {
    hostname_in_a_container("cs-deb12");
}

#[test]
fn hostname_manages_the_files_where_the_name_cannot_be_set_busybox() {
    hostname_in_a_container("cs-busybox");
}

/// On this machine, check mode only: it says what it would do, and
/// changes neither file nor the running name.
#[test]
fn hostname_check_mode_changes_nothing_on_this_machine() {
    let t = connect("localhost");
    let files = [Path::new("/etc/hostname"), Path::new("/etc/hosts")];
    let before: Vec<_> = files.iter().map(|p| local_listing(p)).collect();
    let uname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let checked = hostname(&t, &Hostname::new("cs-check-only"), Mode::Check).unwrap();
    assert!(checked.changed, "{checked:?}");
    assert!(
        checked
            .summary
            .contains(&format!("running name {} -> cs-check-only", uname.trim()))
            || checked.summary.contains("cannot be set here"),
        "{checked:?}"
    );
    let after: Vec<_> = files.iter().map(|p| local_listing(p)).collect();
    assert_eq!(after, before, "check mode changed a file");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        uname
    );
}
