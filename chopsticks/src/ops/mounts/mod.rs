//! [`mount`]: a filesystem's entry in `/etc/fstab` and whether it is
//! mounted, as Ansible's `ansible.posix.mount` and pyinfra's
//! `server.mount` keep them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod check;
mod fstab;
mod mountinfo;
mod run;

use self::check::{fstype, mount_point, options, real_path, source};
use self::fstab::{option_set, Entry};
use self::run::{joined, running, Run};
use super::landing::{landing_options, Landing};
use super::sysctls::read_system_file;
use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::mount";

/// The file of entries.
const FSTAB: &str = "/etc/fstab";

/// How long one `mount` or `umount` may run (a network filesystem's
/// server may be slow to answer).
pub const MOUNT_TIME: Duration = Duration::from_secs(90);

/// What is asked of the mount point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Mounted,
    Unmounted,
    Present,
    Absent,
}

/// A filesystem's entry in `/etc/fstab` and its mount state, as Ansible's
/// `mount` module keeps them: by default [`mounted`](Mount::mounted) (the
/// entry there and the filesystem mounted), or
/// [`unmounted`](Mount::unmounted) (the entry there, nothing mounted on
/// the path), [`present`](Mount::present) (the entry alone; what is
/// mounted is left as it is), [`absent`](Mount::absent) (no entry, nothing
/// mounted on the path; the directory is kept).
///
/// The entry is the line of `/etc/fstab` whose mount point is the path:
/// updated in place when it says otherwise (options compared as a set,
/// order and duplicates aside), added at the end when there is none;
/// every other line is kept byte for byte. Two lines for the same mount
/// point are refused, naming both. Fields are written as fstab(5) says:
/// space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
///
/// Mounting runs `mount -t TYPE -o OPTIONS -- SOURCE PATH` first, creating
/// the mount point's missing directories (mode 0755; the change says so),
/// and then writes the entry, so a filesystem that does not mount leaves
/// `/etc/fstab` as it was (an entry that fails at boot can stop it). When
/// the filesystem is mounted and the entry's options change (or it had no
/// entry), the filesystem is remounted with them (`mount
/// --options-source=disable -o remount,OPTIONS -- PATH`, the old entry's
/// options not merged) and then the entry written, so a remount that
/// fails leaves `/etc/fstab` as it was; a changed source or type takes
/// effect at its next mount, and the change says so. Unmounting runs
/// `umount -- PATH`, refused when several filesystems are mounted on the
/// path, one over another. Each run is bounded by
/// [`timeout`](Mount::timeout), [`MOUNT_TIME`] by default.
///
/// Mounting and unmounting take root with `CAP_SYS_ADMIN`: where this
/// program lacks them (not root, or a container whose runtime withholds
/// it), a step that would mount or unmount fails in both modes, saying
/// so (with what to do); `present()`
/// manages the entry there. The kernel lists mounts by their real path,
/// so a path that goes through a symbolic link is refused, naming the
/// real one.
///
/// The path is absolute, without `.`, `..`, `//` or a final `/`; the
/// source is not empty and does not start with `-`; the type is 1 to 64
/// of `A-Z a-z 0-9 . _ + -` (`ext4`, `nfs4`, `fuse.sshfs`), not starting
/// with `-` or `.`; each option is one word without blanks, commas or
/// control characters, not starting with `-` (so an option whose value
/// holds a comma, such as some SELinux `context=`, cannot be given).
/// For `absent()` only the path counts. Swap entries (whose mount point
/// is `none`) are not managed.
///
/// ```
/// use chopsticks::ops::Mount;
///
/// let data = Mount::new("/srv/data", "UUID=0a1b2c3d-4e5f", "ext4").options(["noatime"]).pass(2);
/// let scratch = Mount::new("/mnt/scratch", "tmpfs", "tmpfs").options(["size=64m", "mode=1777"]);
/// let later = Mount::new("/mnt/backup", "nas:/backup", "nfs4").options(["noauto"]).present();
/// let gone = Mount::new("/mnt/old", "", "").absent();
/// # let _ = (data, scratch, later, gone);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    path: PathBuf,
    source: String,
    fstype: String,
    options: Vec<String>,
    dump: u32,
    pass: u32,
    state: State,
    #[serde(default = "mount_time")]
    timeout: Duration,
    landing: Landing,
}

/// [`MOUNT_TIME`], as serde's default.
fn mount_time() -> Duration {
    MOUNT_TIME
}

impl Mount {
    /// The filesystem `source` (a device, `UUID=...`, `LABEL=...`,
    /// `host:/export`, `tmpfs`...) of type `fstype` mounted on `path`,
    /// with the options `defaults`, dump and pass 0.
    pub fn new(
        path: impl Into<PathBuf>,
        source: impl Into<String>,
        fstype: impl Into<String>,
    ) -> Mount {
        Mount {
            path: path.into(),
            source: source.into(),
            fstype: fstype.into(),
            options: Vec::new(),
            dump: 0,
            pass: 0,
            state: State::Mounted,
            timeout: MOUNT_TIME,
            landing: Landing::default(),
        }
    }

    /// The mount options, one word each (`["noatime", "size=64m"]`),
    /// written in this order, duplicates dropped; none is `defaults`.
    pub fn options<I, S>(mut self, options: I) -> Mount
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }

    /// The entry's fifth field, for `dump(8)` (0, the default, or 1).
    pub fn dump(mut self, dump: u32) -> Mount {
        self.dump = dump;
        self
    }

    /// The entry's sixth field: the order `fsck` checks filesystems at
    /// boot (0, the default: never; 1 for the root filesystem, 2 for
    /// others).
    pub fn pass(mut self, pass: u32) -> Mount {
        self.pass = pass;
        self
    }

    /// How long one `mount` or `umount` may run ([`MOUNT_TIME`] by
    /// default): past it, it is stopped and the apply fails, saying what
    /// to look at, with `/etc/fstab` as it was.
    pub fn timeout(mut self, timeout: Duration) -> Mount {
        self.timeout = timeout;
        self
    }

    /// The entry in `/etc/fstab` and the filesystem mounted (the default).
    pub fn mounted(mut self) -> Mount {
        self.state = State::Mounted;
        self
    }

    /// The entry in `/etc/fstab`, and nothing mounted on the path.
    pub fn unmounted(mut self) -> Mount {
        self.state = State::Unmounted;
        self
    }

    /// The entry in `/etc/fstab`; whether it is mounted is left as it is
    /// (a mounted filesystem keeps its options until its next mount).
    pub fn present(mut self) -> Mount {
        self.state = State::Present;
        self
    }

    /// No entry for the path in `/etc/fstab`, and nothing mounted on it.
    /// The directory is kept (where Ansible removes it).
    pub fn absent(mut self) -> Mount {
        self.state = State::Absent;
        self
    }

    /// What making the mount so would change.
    ///
    /// # Errors
    /// A path, source, type or option as [`Mount`] says they cannot be;
    /// `/etc/fstab` that is a link, longer than 4 MiB, not text, or with
    /// two entries for the path; several filesystems mounted on the path
    /// when it is to be unmounted; no `mount` or `umount`, or no
    /// `CAP_SYS_ADMIN`, when one is to run. Applied, what `mount` or
    /// `umount` said when it failed, with what to do.
    pub fn plan(self) -> Result<Plan, OpError> {
        let path = mount_point(&self.path).map_err(|m| {
            let shown = format!("{:?}", self.path.display().to_string());
            OpError::new(OP, shown.chars().take(80).collect::<String>(), m)
        })?;
        let fail = |message: String| OpError::new(OP, &path, message);
        let entry = self.entry(&path).map_err(fail)?;
        real_path(Path::new(&path)).map_err(fail)?;
        let found = read_system_file(
            OP,
            Path::new(FSTAB),
            "ops::mount does not write through a link: replace the link with the file",
        )?;
        let text = found.text.clone().unwrap_or_default();
        let old = fstab::entry_for(&text, path.as_bytes()).map_err(fail)?;
        let mounts = mountinfo::mounted_on(&mountinfo::read().map_err(fail)?, path.as_bytes());

        let line = (self.state != State::Absent).then(|| entry.line());
        let index = old.as_ref().map(|f| f.index);
        let summary = match (index, &line) {
            (_, Some(_)) if old.as_ref().is_some_and(|f| entry.same_as(&f.fields)) => None,
            (None, Some(line)) => Some(format!("{FSTAB}: add {line}")),
            (Some(i), Some(line)) => Some(format!("{FSTAB} line {}: {line}", i + 1)),
            (Some(i), None) => Some(format!("{FSTAB}: remove line {}, {path}'s entry", i + 1)),
            (None, None) => None,
        };
        let fstab_plan = match summary {
            Some(summary) => {
                let new = fstab::edited(&text, index, line.as_deref());
                Some(found.write(OP, summary, new, false, &self.landing)?)
            }
            None => None,
        };
        let options_changed = old.as_ref().is_none_or(|f| {
            option_set(f.fields.get(3).map_or(&b""[..], Vec::as_slice))
                != option_set(entry.options_field().as_bytes())
        });
        let run = match self.state {
            State::Mounted if mounts.is_empty() => Some(Run::Mount),
            State::Mounted if fstab_plan.is_some() && options_changed => Some(Run::Remount),
            State::Unmounted | State::Absent if mounts.len() > 1 => {
                return Err(fail(format!(
                    "{} filesystems are mounted on it, one over another: unmount them by hand \
                     (umount, once for each), then apply again",
                    mounts.len()
                )))
            }
            State::Unmounted | State::Absent if mounts.len() == 1 => Some(Run::Unmount),
            _ => None,
        };
        let notes = notes(self.state, &entry, old.as_ref(), &mounts);
        match (run, fstab_plan) {
            (None, None) => {
                let now = unchanged(self.state, &path, !mounts.is_empty());
                Ok(Plan::unchanged(format!("{now}{notes}")))
            }
            (None, Some(mut plan)) => {
                plan.change.summary.push_str(&notes);
                Ok(plan)
            }
            (Some(run), fstab_plan) => {
                let why = match old {
                    None => "it had no entry",
                    Some(_) => "its options changed",
                };
                let (parts, steps) = running(run, &entry, &mounts, why, self.timeout)?;
                Ok(joined((parts, steps), fstab_plan, &notes, path))
            }
        }
    }

    /// The entry asked for, its fields checked (all but the path only
    /// when the entry is to be there).
    fn entry(&self, path: &str) -> Result<Entry, String> {
        let absent = self.state == State::Absent;
        if !absent {
            source(&self.source)?;
            fstype(&self.fstype)?;
        }
        let options = match absent {
            true => Vec::new(),
            false => options(&self.options)?,
        };
        Ok(Entry {
            source: self.source.clone(),
            path: path.to_owned(),
            fstype: self.fstype.clone(),
            options,
            dump: self.dump,
            pass: self.pass,
        })
    }
}

landing_options!(Mount);

/// Makes a mount as [`Mount`] describes it.
///
/// # Errors
/// [`OpError`] naming the mount point and what to do.
#[remote]
pub fn mount(spec: Mount, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// What an unchanged plan says is there.
fn unchanged(state: State, path: &str, mounted: bool) -> String {
    let now = if mounted { "mounted" } else { "not mounted" };
    match state {
        State::Mounted | State::Unmounted => format!("{path}: in {FSTAB}, {now}"),
        State::Present => format!("{path}: in {FSTAB}"),
        State::Absent => format!("{path}: not in {FSTAB}, {now}"),
    }
}

/// What the summary adds: for `present()`, the mount state left alone;
/// for a mounted filesystem, a source or type that differs from the
/// entry's (a remount does not change them): the type as the kernel
/// names it ([`same_type`]), the source where it can be told
/// ([`same_source`]), else when the entry's source changes.
fn notes(
    state: State,
    entry: &Entry,
    old: Option<&fstab::Found>,
    mounts: &[mountinfo::Mounted],
) -> String {
    let now = match (state, mounts.last()) {
        (State::Present, None) => return "; not mounted, left so".into(),
        (State::Present, Some(_)) => return "; mounted, left as it is".into(),
        (State::Mounted, Some(now)) => now,
        _ => return String::new(),
    };
    let other_type = entry.fstype != "auto" && !same_type(&now.fstype, &entry.fstype);
    let entry_changed =
        old.is_some_and(|f| f.fields.first().map(Vec::as_slice) != Some(entry.source.as_bytes()));
    let other_source = match same_source(&now.source, &entry.source) {
        Some(same) => !same,
        None => entry_changed,
    };
    match other_type || other_source {
        true => format!(
            "; {} ({}) stays mounted until it is unmounted: unmounted() then mounted() mounts \
             {} ({})",
            now.source, now.fstype, entry.source, entry.fstype
        ),
        false => String::new(),
    }
}

/// Whether the kernel's name of a mounted filesystem's type is the type
/// asked for: the same, or what that type mounts as (`nfs` as `nfs4`,
/// `ntfs-3g` and other FUSE block filesystems as `fuseblk`).
fn same_type(mounted: &str, wanted: &str) -> bool {
    mounted == wanted
        || matches!(
            (wanted, mounted),
            ("nfs", "nfs4") | ("ntfs", "ntfs3" | "fuseblk") | ("ntfs-3g" | "exfat", "fuseblk")
        )
}

/// Whether the kernel's source of a mounted filesystem is the source
/// asked for, where that can be told cheaply: the same text, or the same
/// device (a path, `UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=` resolved
/// through `/dev/disk`); `None` when it cannot be told (a network source
/// spelled otherwise, a device that is not there).
fn same_source(mounted: &str, wanted: &str) -> Option<bool> {
    if mounted == wanted {
        return Some(true);
    }
    let by = |tag: &str, dir: &str| {
        wanted
            .strip_prefix(tag)
            .map(|v| PathBuf::from(format!("/dev/disk/{dir}/{v}")))
    };
    let device = match wanted.starts_with('/') && !wanted.starts_with("//") {
        true => Some(PathBuf::from(wanted)),
        false => by("UUID=", "by-uuid")
            .or_else(|| by("LABEL=", "by-label"))
            .or_else(|| by("PARTUUID=", "by-partuuid"))
            .or_else(|| by("PARTLABEL=", "by-partlabel")),
    };
    match device {
        Some(device) if mounted.starts_with('/') => {
            let wanted = std::fs::canonicalize(device).ok()?;
            let mounted = std::fs::canonicalize(mounted).ok()?;
            Some(wanted == mounted)
        }
        Some(_) => None,
        // A name (tmpfs's, proc's) is listed as given.
        None if !wanted.contains(':') && !wanted.starts_with("//") => Some(false),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_compared_as_the_kernel_names_them() {
        assert!(same_type("nfs4", "nfs") && same_type("nfs4", "nfs4"));
        assert!(same_type("fuseblk", "ntfs-3g") && same_type("tmpfs", "tmpfs"));
        assert!(!same_type("nfs", "nfs4") && !same_type("ext4", "tmpfs"));
    }

    #[test]
    fn sources_are_compared_where_they_can_be_told() {
        assert_eq!(same_source("cs-test", "cs-test"), Some(true));
        assert_eq!(same_source("cs-test", "other"), Some(false));
        assert_eq!(same_source("nas:/x", "nas:/x"), Some(true));
        assert_eq!(same_source("10.0.0.1:/x", "nas:/x"), None);
        assert_eq!(same_source("/proc/self/../self", "/proc/self"), Some(true));
        assert_eq!(same_source("/proc", "/proc/self"), Some(false));
        assert_eq!(same_source("/dev/cs-no-such", "UUID=cs-no-such"), None);
    }
}
