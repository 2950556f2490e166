//! [`sysctl`]: a kernel setting, persisted in a file of `/etc/sysctl.d`
//! and set in the running kernel (`/proc/sys`), as Ansible's `sysctl`
//! and pyinfra's `server.sysctl` make it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::landing::Landing;
use super::text::{bare, Found};
use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::sysctl";

/// Where settings files live.
const DIR: &str = "/etc/sysctl.d";

/// The file a setting goes to unless [`Sysctl::file`] names another.
pub const SYSCTL_FILE: &str = "99-chopsticks.conf";

/// The longest key and the longest value taken, in bytes.
const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 4096;

/// The most of a running value read from `/proc/sys`.
const MAX_RUNNING: u64 = 64 << 10;

/// A kernel setting: one `key = value` line in a file of `/etc/sysctl.d`
/// (other lines of the file kept; a second line setting the same key
/// removed, since the last one would win) and, unless
/// [`runtime(false)`](Sysctl::runtime), the running value in `/proc/sys`.
///
/// Values compare as `sysctl` compares them: blanks between words do not
/// count (`"4096 87380 6291456"` is the kernel's `"4096\t87380\t6291456"`);
/// a value is written as given (but for blanks at its ends).
/// The running value is set first, and read back: a value the kernel
/// refuses (`yes` for a number) or reads back otherwise (`01` as `1`) is
/// refused, the file left as it was (it would fail again at every boot).
/// Where `/proc/sys` cannot be written (a container mounts it
/// read-only), the file is still managed and the change's summary says
/// the running value could not be set, and why.
///
/// A setting a file read after this one at boot sets otherwise (the last
/// one read wins: `/etc/sysctl.conf`, and later names in `/etc/sysctl.d`,
/// `/run/sysctl.d`, `/usr/local/lib/sysctl.d`, `/usr/lib/sysctl.d`,
/// `/lib/sysctl.d`) is refused, naming that file and line.
///
/// ```
/// use chopsticks::ops::Sysctl;
///
/// let forward = Sysctl::new("net.ipv4.ip_forward", "1");
/// // The slash form is the same key; a file of its own; the file only.
/// let swappiness = Sysctl::new("vm/swappiness", "10").file("60-memory.conf").runtime(false);
/// # let _ = (forward, swappiness);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    key: String,
    value: String,
    file: String,
    runtime: bool,
}

impl Sysctl {
    /// `key` (`net.ipv4.ip_forward`, or `net/ipv4/ip_forward`) set to
    /// `value`, in the file [`SYSCTL_FILE`] and in the running kernel.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Sysctl {
        Sysctl {
            key: key.into(),
            value: value.into(),
            file: SYSCTL_FILE.to_owned(),
            runtime: true,
        }
    }

    /// The file of `/etc/sysctl.d` the setting goes to, by name: it ends
    /// in `.conf` (the only files read at boot).
    pub fn file(mut self, name: impl Into<String>) -> Sysctl {
        self.file = name.into();
        self
    }

    /// Whether the running value is set too (`true`, the default), or
    /// only the file (it applies at the next boot): then the key need not
    /// be in the running kernel yet (its module may load later), and is
    /// only checked for its spelling.
    pub fn runtime(mut self, runtime: bool) -> Sysctl {
        self.runtime = runtime;
        self
    }

    /// What setting the key would change.
    ///
    /// # Errors
    /// A key with characters or parts a key cannot have, or (unless
    /// `runtime(false)`) that this kernel does not have; an empty value or
    /// one with a line end; a file name outside `/etc/sysctl.d` or not
    /// ending in `.conf`; a file (a link, or longer than 4 MiB) or running
    /// value that cannot be read; a file read after this one that sets the
    /// key otherwise. Applied, a value the kernel refuses or reads back
    /// otherwise.
    pub fn plan(self) -> Result<Plan, OpError> {
        // The key and the value are checked before either is shown in an
        // error's target: neither then has a line end, nor is long.
        let key = Key::parse(&self.key).map_err(|m| OpError::new(OP, shown(&self.key), m))?;
        let value = value(&self.value).map_err(|m| OpError::new(OP, &key.name, m))?;
        let target = format!("{} = {value}", key.name);
        let fail = |message: String| OpError::new(OP, &target, message);
        file_name(&self.file).map_err(fail)?;
        let proc = key.proc_path();
        // With the running value left alone, the key need not be in this
        // kernel yet (a module loaded later provides it).
        let running = match self.runtime {
            true => Some(read_running(&proc).map_err(fail)?),
            false => None,
        };
        let wanted = normal(&value);
        let same = running.as_deref() == Some(wanted.as_str());

        let path = Path::new(DIR).join(&self.file);
        if let Some(later) = overridden(&self.file, &key.name, &wanted).map_err(fail)? {
            return Err(fail(later));
        }
        let found = read_text(&path)?;
        let shown = found.shown.clone();
        let have = found.text.clone().unwrap_or_default();
        let new = with_setting(&have, &key.name, &value);
        let file = match found.text.is_some() && new == have {
            true => None,
            false => {
                let summary = match found.text {
                    Some(_) => format!("{shown}: set {} = {value}", key.name),
                    None => format!("create {shown} with {} = {value}", key.name),
                };
                Some(found.write(OP, summary, new, false, &Landing::default())?)
            }
        };

        let mut notes = Vec::new();
        let mut set = None;
        match &running {
            None => notes.push("the running value is left as it is".to_owned()),
            Some(_) if same => {}
            Some(running) => match writable(&proc) {
                Ok(()) => {
                    set = Some(running.clone());
                    notes.push(format!("running value {running} -> {wanted}"));
                }
                Err(why) => notes.push(format!(
                    "the running value ({running}) cannot be set here: {why}; it applies at the \
                     next boot"
                )),
            },
        }
        let mut summary = match &file {
            Some(plan) => plan.planned().summary.clone(),
            None => format!("{} = {value} in {shown}", key.name),
        };
        match (&file, same) {
            (None, true) => summary.push_str(" and running"),
            (Some(_), true) => summary.push_str("; the running value is the same"),
            (_, false) => {}
        }
        for note in &notes {
            summary.push_str("; ");
            summary.push_str(note);
        }
        if file.is_none() && set.is_none() {
            return Ok(Plan::unchanged(summary));
        }
        let diff = file.as_ref().and_then(|p| p.planned().diff.clone());
        Ok(Plan::change(summary, diff, move |w| {
            // The running value first: a value the kernel refuses, or
            // reads back otherwise, would fail at every boot from the
            // file, so the file is written only once the kernel took it.
            if let Some(old) = set {
                set_running(w, &proc, &target, &value, &wanted, &old)?;
            }
            match file {
                Some(plan) => plan.apply_with(w),
                None => Ok(()),
            }
        }))
    }
}

/// Sets the running value at `proc` to `value`, and reads it back: when
/// the kernel refuses it, or reads back other than `wanted` (`01` reads
/// back `1`), the error says to give the value as the kernel shows it,
/// and the old running value (`old`) is put back.
fn set_running(
    w: &super::Writer,
    proc: &Path,
    target: &str,
    value: &str,
    wanted: &str,
    old: &str,
) -> Result<(), OpError> {
    let fail = |message: String| OpError::new(OP, target, message);
    let advice = "give the value as the kernel shows it (cat the file under /proc/sys after \
                  setting it by hand); the settings file is left as it was";
    w.write_in_place(proc, format!("{value}\n").as_bytes())
        .map_err(|e| {
            fail(format!(
                "the kernel refused the value ({}: {}): {advice}",
                proc.display(),
                e.message
            ))
        })?;
    let now = read_running(proc).map_err(fail)?;
    if now == wanted {
        return Ok(());
    }
    let back = match w.write_in_place(proc, format!("{old}\n").as_bytes()) {
        Ok(()) => format!("the running value is put back to {old:?}"),
        Err(e) => format!(
            "putting back the running value {old:?} failed too: {}",
            e.message
        ),
    };
    Err(fail(format!(
        "the kernel took {value:?} but reads it back as {now:?}: {advice}; {back}"
    )))
}

/// Sets a kernel setting as [`Sysctl`] describes it.
///
/// # Errors
/// [`OpError`] naming the key and what to do.
#[remote]
pub fn sysctl(spec: Sysctl, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// A key: its parts (the names of the path under `/proc/sys`) and its
/// name in the dotted form a settings file uses.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    parts: Vec<String>,
    name: String,
}

impl Key {
    /// Parses `key` as `sysctl` reads it: when its first separator is a
    /// `/`, its parts are separated by `/`; otherwise by `.`, a `/` in a
    /// part standing for a `.` (`net.ipv4.conf.eth0/100.forwarding`).
    fn parse(key: &str) -> Result<Key, String> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(format!("a key is 1 to {MAX_KEY} bytes long"));
        }
        if let Some(c) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
        {
            return Err(format!(
                "{c:?} cannot be in a key: keys are made of A-Z a-z 0-9 _ . - /"
            ));
        }
        let slash = key
            .find(['.', '/'])
            .is_some_and(|i| key[i..].starts_with('/'));
        let parts: Vec<String> = match slash {
            true => key.split('/').map(str::to_owned).collect(),
            false => key.split('.').map(|p| p.replace('/', ".")).collect(),
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || p == "." || p == ".." || p.starts_with('-'))
        {
            return Err(
                "a key's parts are names: none empty, `.`, `..` or starting with `-` \
                 (e.g. net.ipv4.ip_forward)"
                    .into(),
            );
        }
        let name = parts
            .iter()
            .map(|p| p.replace('.', "/"))
            .collect::<Vec<_>>()
            .join(".");
        Ok(Key { parts, name })
    }

    fn proc_path(&self) -> PathBuf {
        let mut path = PathBuf::from("/proc/sys");
        path.extend(&self.parts);
        path
    }
}

/// `value` with its blanks as `sysctl` compares them: words separated by
/// one space.
fn normal(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value to set, as given but for blanks at its ends (which
/// `sysctl` drops when it reads the file); refused when empty, too long,
/// or with a line end (a settings file holds one line per key).
fn value(value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r', '\0']) {
        return Err("the value contains a line end: a setting is one line".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!("the value is longer than {MAX_VALUE} bytes"));
    }
    match value.trim() {
        "" => Err("the value is empty: give the value to set".into()),
        v => Ok(v.to_owned()),
    }
}

/// A key as an error's target names it before it is known to be a key:
/// quoted, and cut short.
fn shown(key: &str) -> String {
    match key.char_indices().nth(64) {
        Some((at, _)) => format!("{:?}...", &key[..at]),
        None => format!("{key:?}"),
    }
}

/// Refuses a file name that is not a `.conf` file of `/etc/sysctl.d`.
fn file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && !name.contains(['/', '\0', '\n'])
        && !name.starts_with(['.', '-'])
        && name.len() <= 255;
    if !plain || !name.ends_with(".conf") || name == ".conf" {
        return Err(format!(
            "file({name:?}): name a file of {DIR} ending in .conf (e.g. {SYSCTL_FILE:?}), \
             without `/`, not starting with `.` or `-`"
        ));
    }
    Ok(())
}

/// The running value at `proc`, normalized.
fn read_running(proc: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let describe = crate::files::describe;
    match crate::files::entry_at(proc) {
        Ok(Some(e)) if e.kind == crate::files::Kind::File => {}
        Ok(Some(_)) => {
            return Err(format!(
                "{} is not a setting (a directory?): name one of the files under it",
                proc.display()
            ))
        }
        Ok(None) => {
            return Err(format!(
                "this kernel has no such key ({} is missing): check its spelling, or load the \
                 module that provides it",
                proc.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "cannot look at {}: {}",
                proc.display(),
                describe(&e)
            ))
        }
    }
    let mut text = String::new();
    std::fs::File::open(proc)
        .and_then(|f| f.take(MAX_RUNNING).read_to_string(&mut text))
        .map_err(|e| {
            format!(
                "cannot read the running value from {}: {}",
                proc.display(),
                describe(&e)
            )
        })?;
    Ok(normal(&text))
}

/// Whether this program may write `proc`, and why not: a read-only
/// `/proc/sys` (a container's) or no permission. Decided before any
/// write, so that check mode says what apply does.
fn writable(proc: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(proc.as_os_str().as_bytes())
        .map_err(|_| "the path has a NUL byte".to_owned())?;
    // SAFETY: access(2) on a NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::EROFS) => {
            "/proc/sys is read-only here (a container's is): set it on the host, or start the \
             container with it (docker run --sysctl)"
                .to_owned()
        }
        Some(libc::EACCES | libc::EPERM) => denied(
            // SAFETY: geteuid cannot fail.
            unsafe { libc::geteuid() } == 0,
        ),
        _ => crate::files::describe(&e),
    })
}

/// Why a key cannot be written, by whether this program runs as root: a
/// key root cannot write is one the kernel keeps read-only (mode 0444),
/// or one a user namespace (a rootless container's) does not own.
fn denied(root: bool) -> String {
    match root {
        true => "the kernel does not let this key be written here (it is read-only, or this \
                 user namespace does not own it)"
            .to_owned(),
        false => "it is not writable by this user: run as root".to_owned(),
    }
}

/// The most of a settings file (or `/etc/hosts`, `/etc/hostname`) read.
pub(super) const MAX_FILE: u64 = 4 << 20;

/// The text file `path`, read as [`Found::read`] reads it for `op`, but
/// first refused when it is a symbolic link (with `link`, the advice of
/// `op`: it has no `follow`) or longer than [`MAX_FILE`].
pub(super) fn read_system_file(op: &str, path: &Path, link: &str) -> Result<Found, OpError> {
    let fail = |message: String| OpError::new(op, path.display(), message);
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(fail(format!("is a symbolic link: {link}")))
        }
        Ok(m) if m.is_file() && m.len() > MAX_FILE => {
            return Err(fail(format!(
                "is {} bytes long, more than the {} MiB {op} reads: make it smaller",
                m.len(),
                MAX_FILE >> 20
            )))
        }
        _ => {}
    }
    Found::read(op, path, false)
}

/// The settings file `path`, read for [`Sysctl`].
fn read_text(path: &Path) -> Result<Found, OpError> {
    read_system_file(
        OP,
        path,
        &format!(
            "{OP} does not write through a link: name a file of its own with \
             file(\"name.conf\") (e.g. {SYSCTL_FILE:?}), or replace the link with the file"
        ),
    )
}

/// The directories of settings files, `/etc/sysctl.d` first: of files of
/// the same name in several, the first directory's is read.
const DIRS: [&str; 5] = [
    DIR,
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// The file `sysctl --system` reads last, after the directories.
const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// The most entries looked at in each directory of [`DIRS`], and the
/// most files read after ours.
const MAX_LISTED: usize = 4096;
const MAX_LATER: usize = 256;

/// The files read after the file `ours` of `/etc/sysctl.d`, in the order
/// read at boot: of the `.conf` files of `listing` (each of [`DIRS`] with
/// the names in it), one of each name (the first directory's: one of
/// `/etc` hides its namesakes), by name, those after `ours`; then
/// `/etc/sysctl.conf`, which `sysctl --system` reads last.
fn read_after(ours: &str, listing: &[(&str, Vec<String>)]) -> Vec<PathBuf> {
    let mut names: std::collections::BTreeMap<&str, &str> = Default::default();
    for (dir, in_dir) in listing {
        for name in in_dir {
            if name.ends_with(".conf") && !name.starts_with('.') && name.as_str() > ours {
                names.entry(name).or_insert(dir);
            }
        }
    }
    let mut after: Vec<PathBuf> = names
        .into_iter()
        .map(|(name, dir)| Path::new(dir).join(name))
        .collect();
    after.push(PathBuf::from(SYSCTL_CONF));
    after
}

/// The last line of `files` (path and text, in the order read) setting
/// `key`: its file, its line number, and its value normalized.
fn last_setting<'f>(
    key: &str,
    files: &'f [(PathBuf, String)],
) -> Option<(&'f Path, usize, String)> {
    let mut last = None;
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            if key_of(line).as_deref() == Some(key) {
                last = Some((path.as_path(), n + 1, value_of(line)));
            }
        }
    }
    last
}

/// Why the setting `key = wanted` in the file `ours` would lose at boot:
/// the file read after it that sets the key otherwise, and where; `None`
/// when none does.
///
/// # Errors
/// A directory or file that cannot be read; more than [`MAX_LISTED`]
/// entries in a directory or [`MAX_LATER`] files to read; a file longer
/// than [`MAX_FILE`].
fn overridden(ours: &str, key: &str, wanted: &str) -> Result<Option<String>, String> {
    use std::io::Read as _;
    let describe = crate::files::describe;
    let mut listing = Vec::new();
    for dir in DIRS {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot list {dir}: {}", describe(&e))),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {dir}: {}", describe(&e)))?;
            if names.len() == MAX_LISTED {
                return Err(format!(
                    "{dir} has more than {MAX_LISTED} entries, more than {OP} looks through \
                     for settings read after {ours}"
                ));
            }
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        listing.push((dir, names));
    }
    let after = read_after(ours, &listing);
    if after.len() > MAX_LATER {
        return Err(format!(
            "{} settings files are read after {ours}, more than the {MAX_LATER} {OP} reads to \
             tell whether one sets the key otherwise: name a file read later with \
             file(\"...\")",
            after.len()
        ));
    }
    let mut files = Vec::new();
    for path in after {
        // Links followed, as at boot (Debian's 99-sysctl.conf is one).
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {}", path.display(), describe(&e))),
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {}", path.display(), describe(&e)))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(format!(
                "{} is longer than {} MiB, the most {OP} reads to tell whether it sets the key",
                path.display(),
                MAX_FILE >> 20
            ));
        }
        files.push((path, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(match last_setting(key, &files) {
        Some((path, line, value)) if value != wanted => Some(format!(
            "{} line {line} sets {key} = {value}, and is read after {DIR}/{ours} at boot (the \
             last file read wins): remove that line from {}, or manage the setting in that file",
            path.display(),
            path.display()
        )),
        _ => None,
    })
}

/// The key of a settings-file line (`key = value`, `-key = value`), in
/// dotted form; `None` for comments, blank lines and lines that are not
/// settings.
fn key_of(line: &str) -> Option<String> {
    let line = bare(line).trim();
    if line.is_empty() || line.starts_with(['#', ';']) {
        return None;
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_start_matches('-');
    Key::parse(key).ok().map(|k| k.name)
}

/// The value of a settings-file line, normalized.
fn value_of(line: &str) -> String {
    normal(bare(line).split_once('=').map_or("", |(_, v)| v))
}

/// `text` (a settings file) with `key = value`: the first line setting
/// the key kept when its value is the same (however spaced), else
/// replaced (the value written as given); later lines setting it
/// removed; appended when none does.
fn with_setting(text: &str, key: &str, value: &str) -> String {
    let wanted = normal(value);
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if key_of(line).as_deref() != Some(key) {
            out.push_str(line);
            continue;
        }
        if !done {
            match value_of(line) == wanted {
                true => out.push_str(line),
                false => out.push_str(&format!("{key} = {value}\n")),
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
            done = true;
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_sysctl_reads_them() {
        let k = Key::parse("net.ipv4.ip_forward").unwrap();
        assert_eq!(k.proc_path(), Path::new("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(k.name, "net.ipv4.ip_forward");
        let slash = Key::parse("net/ipv4/conf/eth0.100/forwarding").unwrap();
        assert_eq!(slash.name, "net.ipv4.conf.eth0/100.forwarding");
        assert_eq!(
            slash.proc_path(),
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        assert_eq!(
            Key::parse("net.ipv4.conf.eth0/100.forwarding").unwrap(),
            slash
        );
        for bad in [
            "",
            "net..ipv4",
            "net.ipv4.",
            "/proc/sys/x",
            "a/../b",
            "a b",
            "-w",
            "a.-b",
            "x=1",
            "kernel.*",
        ] {
            assert!(Key::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_compare_as_sysctl_compares_them() {
        // Written as given (but for the ends), compared normalized.
        assert_eq!(
            value(" 4096\t87380  6291456 ").unwrap(),
            "4096\t87380  6291456"
        );
        assert_eq!(normal("4096\t87380  6291456"), "4096 87380 6291456");
        assert_eq!(value("|/bin/x  %p").unwrap(), "|/bin/x  %p");
        assert!(value("").is_err());
        assert!(value(" \t").is_err());
        assert!(value("1\nkernel.x = 2").is_err());
        assert!(file_name("60-net.conf").is_ok());
        for bad in [
            "",
            "x",
            "../x.conf",
            "a/b.conf",
            ".conf",
            ".x.conf",
            "-x.conf",
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_line_per_key_and_the_others_kept() {
        let key = "net.ipv4.ip_forward";
        assert_eq!(with_setting("", key, "1"), "net.ipv4.ip_forward = 1\n");
        assert_eq!(
            with_setting("# mine\nvm.swappiness=10", key, "1"),
            "# mine\nvm.swappiness=10\nnet.ipv4.ip_forward = 1\n"
        );
        // The same value, however written, is left alone.
        let same = "-net/ipv4/ip_forward=1\n";
        assert_eq!(with_setting(same, key, "1"), same);
        assert_eq!(
            with_setting(
                "a = 1\nnet.ipv4.ip_forward = 0\nb = 2\nnet.ipv4.ip_forward=3\n",
                key,
                "1"
            ),
            "a = 1\nnet.ipv4.ip_forward = 1\nb = 2\n"
        );
        // Blanks inside a value are written as given.
        assert_eq!(
            with_setting("", "kernel.core_pattern", "|/bin/x  %p"),
            "kernel.core_pattern = |/bin/x  %p\n"
        );
        let spaced = "kernel.core_pattern = |/bin/x %p\n";
        assert_eq!(
            with_setting(spaced, "kernel.core_pattern", "|/bin/x  %p"),
            spaced
        );
        assert_eq!(
            with_setting("#net.ipv4.ip_forward = 0\n", key, "1"),
            "#net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 1\n"
        );
    }

    /// A key or value that cannot be one is never shown as it is: an
    /// error's target names the key, quoted and cut short, with no line
    /// end.
    #[test]
    fn errors_name_a_bad_key_or_value_safely() {
        let long = format!("a\n{}", "b".repeat(5000));
        let err = Sysctl::new(&long, "1").plan().unwrap_err();
        assert!(!err.target.contains('\n') && err.target.len() < 80, "{err}");
        let err = Sysctl::new("kernel.x", "1\nkernel.panic = 1")
            .runtime(false)
            .plan()
            .unwrap_err();
        assert_eq!(err.target, "kernel.x");
        let err = Sysctl::new("kernel.x", "1".repeat(MAX_VALUE + 1))
            .runtime(false)
            .plan()
            .unwrap_err();
        assert_eq!(err.target, "kernel.x");
        assert!(denied(true).contains("the kernel does not let this key be written here"));
        assert!(!denied(true).contains("run as root"));
        assert!(denied(false).contains("run as root"));
    }

    /// The files read after ours, in order: later names, one of each name
    /// (the first directory's), then `/etc/sysctl.conf`; the last line
    /// setting the key wins.
    #[test]
    fn later_files_are_found_in_the_order_read_at_boot() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let listing = [
            (
                "/etc/sysctl.d",
                names(&[
                    "10-a.conf",
                    "99-chopsticks.conf",
                    "99-sysctl.conf",
                    "README",
                ]),
            ),
            ("/run/sysctl.d", names(&["99-zz.conf", ".99-hidden.conf"])),
            (
                "/usr/lib/sysctl.d",
                names(&[
                    "99-chopsticks.conf",
                    "99-sysctl.conf",
                    "99-protect-links.conf",
                ]),
            ),
        ];
        assert_eq!(
            read_after("99-chopsticks.conf", &listing),
            [
                "/usr/lib/sysctl.d/99-protect-links.conf",
                "/etc/sysctl.d/99-sysctl.conf",
                "/run/sysctl.d/99-zz.conf",
                "/etc/sysctl.conf",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            read_after("zz.conf", &listing),
            [PathBuf::from(SYSCTL_CONF)]
        );
        let files = [
            (
                PathBuf::from("/a.conf"),
                "x.y = 1\nvm.swappiness=5\n".to_owned(),
            ),
            (
                PathBuf::from("/b.conf"),
                "# vm.swappiness = 1\n-vm/swappiness =  7 \n".to_owned(),
            ),
            (PathBuf::from("/c.conf"), "x.y = 2\n".to_owned()),
        ];
        assert_eq!(
            last_setting("vm.swappiness", &files),
            Some((Path::new("/b.conf"), 2, "7".to_owned()))
        );
        assert_eq!(last_setting("kernel.panic", &files), None);
    }
}
