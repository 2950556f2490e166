//! The handler state file: where it lives, its format, reading it within
//! bounds, replacing it atomically, and the lock that makes two runs take
//! turns.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check_name, shorten, Pending, MAX_HANDLER_STATE, MAX_PENDING, OP};
use crate::files::{self, describe, Kind};
use crate::ops::{OpError, Owner, Writer};

/// The state file's `format` field.
const FORMAT: &str = "chopsticks-handlers";
/// The version of the state file this build writes (and the newest it
/// reads).
const VERSION: u32 = 1;

/// What every version of the state file starts with.
#[derive(Debug, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// The state file, as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    format: String,
    version: u32,
    tool: String,
    plan: String,
    pending: Vec<Pending>,
}

/// Replaces the state file `path` (of `tool`'s `plan`) with `pending`
/// (removes it when empty).
pub(super) fn write(
    path: &Path,
    tool: &str,
    plan: &str,
    pending: Vec<Pending>,
) -> Result<(), OpError> {
    let writer = Writer::new();
    if pending.is_empty() {
        return match files::entry_at(path) {
            Ok(None) => Ok(()),
            _ => writer.remove_file(path),
        };
    }
    let state = State {
        format: FORMAT.to_owned(),
        version: VERSION,
        tool: tool.to_owned(),
        plan: plan.to_owned(),
        pending,
    };
    let mut json = serde_json::to_vec_pretty(&state)
        .map_err(|e| error(path, format!("cannot encode the state: {e}")))?;
    json.push(b'\n');
    if json.len() > MAX_HANDLER_STATE {
        return Err(error(
            path,
            format!(
                "the pending handlers take more than {MAX_HANDLER_STATE} bytes: \
                 use shorter handler and step names"
            ),
        ));
    }
    writer.write_file(path, &json, 0o600, &Owner::default())
}

/// An error about `path`.
fn error(path: &Path, message: String) -> OpError {
    OpError::new(OP, path.display(), message)
}

/// How long a run waits for another run's hold on a state directory.
const LOCK_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Holds `dir` (ours, private) against other runs: an exclusive `flock`,
/// released when the returned file is dropped.
pub(super) fn lock(dir: &Path) -> Result<std::fs::File, OpError> {
    use std::os::fd::AsRawFd as _;
    let fail = |m: String| OpError::new(OP, dir.display(), m);
    let held = std::fs::File::open(dir).map_err(|e| fail(describe(&e)))?;
    let start = std::time::Instant::now();
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(held);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(fail(format!("cannot lock it: {}", describe(&e))));
        }
        if start.elapsed() > LOCK_TIME {
            return Err(fail(format!(
                "another run of this tool holds it for more than {} s: let it end, and \
                 run again",
                LOCK_TIME.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Where this user's handler state lives: `/var/lib/chopsticks` for root,
/// else `$XDG_STATE_HOME/chopsticks` or `HOME/.local/state/chopsticks`,
/// HOME being the effective user's home in the password database (not
/// `$HOME`, which a `sudo -u` or `su` may have left another user's).
pub(super) fn dir() -> Result<PathBuf, OpError> {
    if euid() == 0 {
        return Ok(PathBuf::from("/var/lib/chopsticks"));
    }
    let absolute = |p: PathBuf| Some(p).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .and_then(absolute)
        .or_else(|| home().and_then(absolute).map(|h| h.join(".local/state")));
    match base {
        Some(base) => Ok(base.join("chopsticks")),
        None => Err(OpError::new(
            OP,
            "handler state",
            format!(
                "uid {} has no absolute home directory in the password database and \
                 XDG_STATE_HOME is not set to an absolute path on the host, so pending \
                 handlers have nowhere to be kept: give the user a home, or set XDG_STATE_HOME",
                euid()
            ),
        )),
    }
}

/// The effective user's home directory in the password database.
fn home() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: passwd is plain old data; getpwuid_r writes into `pwd`
        // and `buf` (of the length given) only, and sets `found` to `pwd`
        // or null.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwuid_r(
                euid(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: pw_dir points to a NUL-terminated string in `buf`.
        let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
        let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
        return Some(PathBuf::from(dir)).filter(|d| !d.as_os_str().is_empty());
    }
}

/// Makes sure `dir` is a directory of ours, mode 700 (created, with its
/// missing parents, when absent).
pub(super) fn private_dir(dir: &Path) -> Result<(), OpError> {
    let fail = |m: String| OpError::new(OP, dir.display(), m);
    let entry = files::entry_at(dir).map_err(|e| fail(describe(&e)))?;
    let entry = match entry {
        Some(entry) => entry,
        None => {
            if let Some(parent) = dir.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| fail(format!("cannot create its parent: {}", describe(&e))))?;
            }
            let made = Writer::new().create_dir(dir, 0o700);
            // Another run may have made it meanwhile (EEXIST): what is
            // there now is checked as if it had been there.
            match files::entry_at(dir) {
                Ok(Some(entry)) => entry,
                _ => return made,
            }
        }
    };
    if entry.kind != Kind::Dir {
        return Err(fail(
            "is not a directory: chopsticks keeps handler state there; remove or rename it".into(),
        ));
    }
    if entry.uid != euid() {
        return Err(fail(format!(
            "is owned by uid {}, not by this user (uid {}): it is not ours to keep handler \
             state in; remove it, or give it to this user",
            entry.uid,
            euid()
        )));
    }
    if entry.mode & 0o077 != 0 {
        Writer::new().set_mode(dir, 0o700)?;
    }
    Ok(())
}

pub(super) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// What the state file at `path` lists as pending; nothing when there is
/// no file.
///
/// # Errors
/// A link or something else than a file there, one owned by someone
/// else, larger than [`MAX_HANDLER_STATE`], not a state file of this
/// version, tool and plan, or one that cannot be read.
pub(super) fn read(path: &Path, tool: &str, plan: &str) -> Result<Vec<Pending>, OpError> {
    let fail = |m: String| OpError::new(OP, path.display(), m);
    let remove = "remove it (its pending handlers will then not run unless notified again)";
    let entry = match files::entry_at(path) {
        Ok(entry) => entry,
        Err(e) => return Err(fail(describe(&e))),
    };
    let Some(entry) = entry else {
        return Ok(Vec::new());
    };
    if entry.kind != Kind::File {
        return Err(fail(format!(
            "is not a regular file but chopsticks keeps handler state there: {remove}"
        )));
    }
    if entry.uid != euid() {
        return Err(fail(format!(
            "is owned by uid {}, not by this user (uid {}): it is not a state file of ours; \
             {remove}",
            entry.uid,
            euid()
        )));
    }
    let mut bytes = Vec::new();
    let (dir, name) = files::parent_and_name(path).map_err(|e| fail(describe(&e)))?;
    let file = dir.open_file(&name).map_err(|e| fail(describe(&e)))?;
    // What was opened, not what the path named a moment before.
    let uid =
        std::os::unix::fs::MetadataExt::uid(&file.metadata().map_err(|e| fail(describe(&e)))?);
    if uid != euid() {
        return Err(fail(format!(
            "is owned by uid {uid}, not by this user (uid {}): it is not a state file of ours; \
             {remove}",
            euid()
        )));
    }
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_HANDLER_STATE as u64 + 1),
        &mut bytes,
    )
    .map_err(|e| fail(describe(&e)))?;
    if bytes.len() > MAX_HANDLER_STATE {
        return Err(fail(format!(
            "is larger than {MAX_HANDLER_STATE} bytes, more than a handler state file of \
             ours ever is: {remove}"
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    let corrupt = |why: String| {
        fail(format!(
            "is not a handler state file this build reads ({why}): {remove}"
        ))
    };
    // The format and version first: a newer version may change the rest.
    let header: Header = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if header.format != FORMAT {
        return Err(corrupt(format!(
            "its format is {:?}",
            shorten(&header.format)
        )));
    }
    if header.version > VERSION {
        return Err(fail(format!(
            "was written by a newer build of {tool} (state version {}, this build reads \
             {VERSION}): upgrade {tool} on this controller, and run the plan with it",
            header.version
        )));
    }
    let state: State = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if state.tool != tool || state.plan != plan {
        return Err(corrupt(format!(
            "it names the tool {:?} and plan {:?}",
            shorten(&state.tool),
            shorten(&state.plan)
        )));
    }
    if state.pending.len() > MAX_PENDING {
        return Err(corrupt(format!(
            "it lists more than {MAX_PENDING} handlers"
        )));
    }
    for p in &state.pending {
        check_name("handler", &p.handler).map_err(|e| corrupt(e.message))?;
    }
    Ok(state.pending)
}
