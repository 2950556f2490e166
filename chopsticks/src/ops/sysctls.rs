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
/// count (`"4096 87380 6291456"` is the kernel's `"4096\t87380\t6291456"`).
/// Where `/proc/sys` cannot be written (a container mounts it
/// read-only), the file is still managed and the change's summary says
/// the running value could not be set, and why.
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
    /// only the file (it applies at the next boot).
    pub fn runtime(mut self, runtime: bool) -> Sysctl {
        self.runtime = runtime;
        self
    }

    /// What setting the key would change.
    ///
    /// # Errors
    /// A key with characters or parts a key cannot have, or that this
    /// kernel does not have; an empty value or one with a line end; a
    /// file name outside `/etc/sysctl.d` or not ending in `.conf`; a
    /// file or running value that cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        let target = format!("{} = {}", self.key, self.value);
        let fail = |message: String| OpError::new(OP, &target, message);
        let key = Key::parse(&self.key).map_err(fail)?;
        let value = value(&self.value).map_err(fail)?;
        file_name(&self.file).map_err(fail)?;
        let proc = key.proc_path();
        let running = read_running(&proc).map_err(fail)?;

        let path = Path::new(DIR).join(&self.file);
        let found = Found::read(OP, &path, false)?;
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
        let mut set = false;
        match self.runtime {
            false => notes.push("the running value is left as it is".to_owned()),
            true if running == value => {}
            true => match writable(&proc) {
                Ok(()) => {
                    set = true;
                    notes.push(format!("running value {running} -> {value}"));
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
        match (&file, self.runtime && running == value) {
            (None, true) => summary.push_str(" and running"),
            (Some(_), true) => summary.push_str("; the running value is the same"),
            (_, false) => {}
        }
        for note in &notes {
            summary.push_str("; ");
            summary.push_str(note);
        }
        if file.is_none() && !set {
            return Ok(Plan::unchanged(summary));
        }
        let diff = file.as_ref().and_then(|p| p.planned().diff.clone());
        let name = key.name.clone();
        Ok(Plan::change(summary, diff, move |w| {
            if let Some(plan) = file {
                plan.apply_with(w)?;
            }
            if set {
                w.write_in_place(&proc, format!("{value}\n").as_bytes())?;
                let now = read_running(&proc).map_err(|m| OpError::new(OP, &name, m))?;
                if now != value {
                    return Err(OpError::new(
                        OP,
                        &name,
                        format!(
                            "the kernel took {value:?} but reads back {now:?}: give the value \
                             as the kernel shows it"
                        ),
                    ));
                }
            }
            Ok(())
        }))
    }
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

/// The value to set, normalized; refused when empty, too long, or with a
/// line end (a settings file holds one line per key).
fn value(value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r', '\0']) {
        return Err("the value contains a line end: a setting is one line".into());
    }
    if value.len() > MAX_VALUE {
        return Err(format!("the value is longer than {MAX_VALUE} bytes"));
    }
    match normal(value) {
        v if v.is_empty() => Err("the value is empty: give the value to set".into()),
        v => Ok(v),
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
        Some(libc::EACCES | libc::EPERM) => format!(
            "{} is not writable by this user: run as root",
            proc.display()
        ),
        _ => crate::files::describe(&e),
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
/// replaced; later lines setting it removed; appended when none does.
fn with_setting(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if key_of(line).as_deref() != Some(key) {
            out.push_str(line);
            continue;
        }
        if !done {
            match value_of(line) == value {
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
        assert_eq!(
            value(" 4096\t87380  6291456 ").unwrap(),
            "4096 87380 6291456"
        );
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
        assert_eq!(
            with_setting("#net.ipv4.ip_forward = 0\n", key, "1"),
            "#net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 1\n"
        );
    }
}
