//! [`hostname`]: the host's name in `/etc/hostname`, in the `127.0.1.1`
//! line of `/etc/hosts` as Debian writes it, and in the running kernel.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::landing::Landing;
use super::sysctls::read_system_file;
use super::text::{bare, eol_of, Found};
use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::hostname";

const HOSTNAME: &str = "/etc/hostname";
const HOSTS: &str = "/etc/hosts";

/// The address Debian gives the host's own name in `/etc/hosts`.
const SELF: &str = "127.0.1.1";

/// The most bytes the kernel keeps of a host name (`HOST_NAME_MAX`).
const MAX_NAME: usize = 64;

/// CAP_SYS_ADMIN, which `sethostname(2)` takes.
pub(super) const CAP_SYS_ADMIN: u32 = 21;

/// A host name: `/etc/hostname` holds it, `/etc/hosts` has the line
/// `127.0.1.1 FQDN SHORT` (`127.0.1.1 NAME` for a name without dots; the
/// first `127.0.1.1` line replaced, or the line added after the
/// `127.0.0.1` one; other lines kept), and the running kernel has it
/// (`uname -n`), set with `sethostname(2)`.
///
/// Where this program lacks `CAP_SYS_ADMIN` (a container: its runtime
/// sets its name), the running name is left as it is, and the change's
/// summary says so; the files are still managed. A program that has
/// `CAP_SYS_ADMIN` only in a user namespace that does not own the host's
/// name (a child user namespace sharing the UTS namespace) looks able to
/// set it: check mode says it sets it, and apply writes the files and
/// then fails, saying why. In a container whose
/// `/etc/hostname` and `/etc/hosts` are mounted from outside, they are
/// written in place.
///
/// ```
/// use chopsticks::ops::Hostname;
///
/// let web = Hostname::new("web1.example.com"); // 127.0.1.1 web1.example.com web1
/// # let _ = web;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hostname {
    name: String,
}

impl Hostname {
    /// The host is to be called `name`: one or more labels of `A-Z a-z
    /// 0-9 -` separated by dots (RFC 1123), at most 64 bytes (what the
    /// kernel keeps).
    pub fn new(name: impl Into<String>) -> Hostname {
        Hostname { name: name.into() }
    }

    /// What naming the host would change.
    ///
    /// # Errors
    /// A name RFC 1123 does not allow; `/etc/hostname` or `/etc/hosts`
    /// that is a link, not text, or cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        let name = self.name;
        valid(&name).map_err(|m| OpError::new(OP, &name, m))?;
        let mut parts = Vec::new();
        let mut diffs = String::new();
        let mut plans = Vec::new();

        let found = read(Path::new(HOSTNAME))?;
        if found.text.as_deref().map(str::trim) != Some(name.as_str()) {
            let summary = format!("{HOSTNAME}: {name}");
            plans.push(found.write(
                OP,
                summary,
                format!("{name}\n"),
                false,
                &Landing::default(),
            )?);
        }
        let found = read(Path::new(HOSTS))?;
        let line = self_line(&name);
        let new = with_self_line(found.text.as_deref(), &line);
        if found.text.as_deref() != Some(new.as_str()) {
            let summary = format!("{HOSTS}: {}", line.replace('\t', " "));
            plans.push(found.write(OP, summary, new, false, &Landing::default())?);
        }
        for plan in &plans {
            parts.push(plan.planned().summary.clone());
            if let Some(d) = &plan.planned().diff {
                diffs.push_str(d);
            }
        }

        let running = running().map_err(|m| OpError::new(OP, &name, m))?;
        let set = running != name;
        let can = match set {
            true => may_set(),
            false => Ok(()),
        };
        match (&can, set) {
            (_, false) => {}
            (Ok(()), true) => parts.push(format!("running name {running} -> {name}")),
            (Err(why), true) => parts.push(format!(
                "the running name ({running}) cannot be set here: {why}; it applies at the next \
                 boot"
            )),
        }
        let set = set && can.is_ok();
        if plans.is_empty() && !set {
            let mut summary = format!("host name {name} in {HOSTNAME} and {HOSTS}");
            for part in &parts {
                summary.push_str("; ");
                summary.push_str(part);
            }
            if parts.is_empty() {
                summary.push_str(" and running");
            }
            return Ok(Plan::unchanged(summary));
        }
        let diff = (!diffs.is_empty()).then_some(diffs);
        Ok(Plan::change(parts.join("; "), diff, move |w| {
            for plan in plans {
                plan.apply_with(w)?;
            }
            match set {
                true => set_running(&name),
                false => Ok(()),
            }
        }))
    }
}

/// Names the host as [`Hostname`] describes it.
///
/// # Errors
/// [`OpError`] naming the host name and what to do.
#[remote]
pub fn hostname(spec: Hostname, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// `path` (`/etc/hostname`, `/etc/hosts`) as it is: a link is refused
/// (this op writes the file itself, and has no `follow`), and so is a
/// file too long to be one of these.
fn read(path: &Path) -> Result<Found, OpError> {
    read_system_file(
        OP,
        path,
        &format!(
            "{OP} does not replace a link with a file: make {} a file, or set the name in \
             the file it points to",
            path.display()
        ),
    )
}

/// Refuses a name RFC 1123 does not allow, or the kernel cannot keep.
fn valid(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "a host name is 1 to {MAX_NAME} bytes long (the most the kernel keeps)"
        ));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{label:?} is not a label of a host name: 1 to 63 of A-Z a-z 0-9 -, not \
                 starting or ending with - (RFC 1123), labels separated by single dots"
            ));
        }
    }
    Ok(())
}

/// The `/etc/hosts` line for `name`, as Debian writes it.
fn self_line(name: &str) -> String {
    match name.split_once('.') {
        Some((short, _)) => format!("{SELF}\t{name}\t{short}"),
        None => format!("{SELF}\t{name}"),
    }
}

/// The words of a line of `/etc/hosts`, its comment left out.
fn words(line: &str) -> Vec<&str> {
    let line = bare(line);
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// `text` (`/etc/hosts`; `None` when missing) with `line`: the first line
/// for `127.0.1.1` replaced unless its names are the same, else the line
/// added after the first `127.0.0.1` line, or at the end.
fn with_self_line(text: Option<&str>, line: &str) -> String {
    let Some(text) = text else {
        return format!("127.0.0.1\tlocalhost\n{line}\n");
    };
    let eol = eol_of(text);
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let want = words(line);
    if let Some(i) = lines.iter().position(|l| words(l).first() == Some(&SELF)) {
        if words(&lines[i]) != want {
            lines[i] = format!("{line}{eol}");
        }
        return lines.concat();
    }
    let at = lines
        .iter()
        .position(|l| words(l).first() == Some(&"127.0.0.1"))
        .map_or(lines.len(), |i| i + 1);
    if let Some(open) = lines
        .get_mut(at.wrapping_sub(1))
        .filter(|l| !l.ends_with('\n'))
    {
        open.push_str(eol);
    }
    lines.insert(at, format!("{line}{eol}"));
    lines.concat()
}

/// The running host name (`uname -n`).
fn running() -> Result<String, String> {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(format!(
            "cannot read the running host name: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel NUL-terminates nodename within the array.
    let name = unsafe { std::ffi::CStr::from_ptr(uts.nodename.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// Whether this program may set the running name, and why not: decided
/// from its capabilities before anything is written, so that check mode
/// says what apply does.
fn may_set() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status to tell whether it may: {e}"))?;
    match has_cap(&status, CAP_SYS_ADMIN) {
        Some(true) => Ok(()),
        Some(false) => Err(
            "this program lacks CAP_SYS_ADMIN (in a container, its runtime names it: docker \
             run --hostname)"
                .into(),
        ),
        None => Err("/proc/self/status shows no CapEff line to tell whether it may".into()),
    }
}

/// Whether the `CapEff` of a `/proc/PID/status` text has capability `cap`.
pub(super) fn has_cap(status: &str, cap: u32) -> Option<bool> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let bits = u64::from_str_radix(hex.trim(), 16).ok()?;
    Some(bits >> cap & 1 == 1)
}

/// Sets the running host name.
fn set_running(name: &str) -> Result<(), OpError> {
    // SAFETY: sethostname reads `len` bytes of `name`.
    let done = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    match done {
        0 => Ok(()),
        _ => Err(OpError::new(
            OP,
            name,
            refused(&std::io::Error::last_os_error()),
        )),
    }
}

/// Why `sethostname(2)` failed, once the check found `CAP_SYS_ADMIN`:
/// `EPERM` then means the capability is held in a user namespace that
/// does not own this host's UTS namespace (a process in a child user
/// namespace: its `CapEff` shows the capability there).
fn refused(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "sethostname was refused (EPERM) although this program has \
             CAP_SYS_ADMIN: it has it in a user namespace that does not own this host's name \
             (a user namespace without its own UTS namespace); the files are written: set the \
             running name from outside that namespace, or reboot"
            .to_owned(),
        _ => format!(
            "sethostname: {e}: the files are written; set the running name as root, or reboot"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rfc_1123_host_names() {
        for good in ["web1", "web-1.example.com", "a", "1host", &"a".repeat(63)] {
            assert!(valid(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "-n",
            "web_1",
            "a..b",
            "a.",
            ".a",
            "a-.b",
            "a b",
            "a\nb",
            &format!("{}.b", "a".repeat(64)),
            &"a".repeat(65),
        ] {
            assert!(valid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_self_line_is_replaced_or_added_after_localhost() {
        let line = self_line("web1.example.com");
        assert_eq!(line, "127.0.1.1\tweb1.example.com\tweb1");
        let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost\n";
        assert_eq!(
            with_self_line(Some(hosts), &line),
            "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.com\tweb1\n::1\tlocalhost\n"
        );
        let old = "127.0.0.1 localhost\n127.0.1.1 old.example.com old # set up\n";
        assert_eq!(
            with_self_line(Some(old), &line),
            "127.0.0.1 localhost\n127.0.1.1\tweb1.example.com\tweb1\n"
        );
        // The same names, however spaced or commented, are left alone.
        let same = "127.0.1.1   web1.example.com web1  # mine\n";
        assert_eq!(with_self_line(Some(same), &line), same);
        assert_eq!(
            with_self_line(Some("10.0.0.1 db"), "127.0.1.1\ta"),
            "10.0.0.1 db\n127.0.1.1\ta\n"
        );
        assert_eq!(
            with_self_line(None, "127.0.1.1\ta"),
            "127.0.0.1\tlocalhost\n127.0.1.1\ta\n"
        );
    }

    #[test]
    fn capabilities_are_read_from_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0\nCapEff:\t00000000a80425fb\n";
        assert_eq!(has_cap(status, CAP_SYS_ADMIN), Some(false));
        let root = "CapEff:\t000001ffffffffff\n";
        assert_eq!(has_cap(root, CAP_SYS_ADMIN), Some(true));
        assert_eq!(has_cap("Name:\tx\n", CAP_SYS_ADMIN), None);
    }

    #[test]
    fn a_refused_sethostname_says_why() {
        let eperm = refused(&std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(eperm.contains("user namespace"), "{eperm}");
        assert!(eperm.contains("the files are written"), "{eperm}");
        let other = refused(&std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(other.starts_with("sethostname: "), "{other}");
    }

    /// A link is refused with this op's own advice (it has no `follow`),
    /// and so is a file longer than the bound.
    #[test]
    fn links_and_long_files_are_refused_with_this_ops_advice() {
        let dir = std::env::temp_dir().join(format!("cs-hostname-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("hosts");
        std::os::unix::fs::symlink("/etc/hosts", &link).unwrap();
        let err = read(&link).err().unwrap().to_string();
        assert!(err.contains("make") && !err.contains("follow"), "{err}");
        let long = dir.join("long");
        let file = std::fs::File::create(&long).unwrap();
        file.set_len(super::super::sysctls::MAX_FILE + 1).unwrap();
        let err = read(&long).err().unwrap().to_string();
        assert!(err.contains("more than the 4 MiB"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
