//! Handlers that are never lost: what [`Report::notify`] and
//! [`Report::handler`] keep of a plan's notifications, in memory and, in
//! [`Mode::Apply`], in a small state file on the host, per tool and plan:
//!
//! - root's: `/var/lib/chopsticks/TOOL/PLAN.handlers.json`;
//! - a user's: `$XDG_STATE_HOME/chopsticks/...`, by default
//!   `~/.local/state/chopsticks/TOOL/PLAN.handlers.json`.
//!
//! A notification is written there as soon as it is made and removed only
//! when its handler succeeds, so a run that fails or is interrupted in
//! between leaves it pending for the next run. The directories are mode
//! 700, the file 600; it is replaced atomically (through the [`Writer`]),
//! never through a link someone else owns, and read within
//! [`MAX_HANDLER_STATE`] bytes. Each change re-reads it under a lock on
//! its directory, so two runs at once keep each other's notifications. TOOL is [`crate::agent::tool`]: the
//! program's name, which a new build keeps.
//!
//! [`Report::notify`]: super::Report::notify
//! [`Report::handler`]: super::Report::handler

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{backup, Mode, OpError, Owner, Writer};
use crate::files::{self, describe, Kind};

/// The longest plan or handler name, in bytes.
pub const MAX_HANDLER_NAME: usize = 128;

/// The most handlers one plan may have pending at once.
pub const MAX_PENDING: usize = 64;

/// The largest handler state file read, in bytes.
pub const MAX_HANDLER_STATE: usize = 64 << 10;

/// What every error here names as its operation.
const OP: &str = "ops::Report";

/// The state file's `format` field.
const FORMAT: &str = "chopsticks-handlers";
/// The version of the state file this build writes (and the newest it
/// reads).
const VERSION: u32 = 1;

/// Refuses a plan or handler name (`what`) that is empty, longer than
/// [`MAX_HANDLER_NAME`], starts with `.` or `-`, or holds a `/` or a
/// control character: plan names become file names.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), OpError> {
    let bad = |why: &str| {
        Err(OpError::new(
            OP,
            format!("{what} {:?}", shorten(name)),
            format!("{why}: name {what}s with letters, digits, spaces and `._-+@:`"),
        ))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_HANDLER_NAME {
        return bad(&format!("is longer than {MAX_HANDLER_NAME} bytes"));
    }
    if name.starts_with(['.', '-']) {
        return bad("starts with `.` or `-`");
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return bad("holds a `/` or a control character");
    }
    Ok(())
}

/// `name` cut to 40 characters for a message.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &name[..at]),
        None => name.to_owned(),
    }
}

/// A handler waiting to run: notified by step `by` in the run that
/// started at `since` (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub handler: String,
    pub by: String,
    pub since: u64,
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

/// Why a handler runs (or would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reason {
    /// A step of this run changed something and notified it.
    Notified(String),
    /// An earlier run notified it and did not finish it.
    Pending(u64),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Notified(step) => write!(f, "notified by {step}"),
            Reason::Pending(since) => write!(
                f,
                "pending since {} UTC (an earlier run did not finish it)",
                backup::timestamp(UNIX_EPOCH + std::time::Duration::from_secs(*since))
            ),
        }
    }
}

/// A plan's handlers in one run: its identity, what was pending when it
/// started, what this run notified and which handlers it reached.
#[derive(Debug, Clone, Default)]
pub(super) struct Handlers {
    pub plan: String,
    mode: Mode,
    tool: String,
    path: PathBuf,
    started: u64,
    earlier: Vec<Pending>,
    notified: Vec<Pending>,
    reached: Vec<String>,
}

impl Handlers {
    /// The handlers of the plan `plan` of this tool, with what an earlier
    /// run left pending.
    ///
    /// # Errors
    /// A bad plan name; no state directory (no `HOME` for a user); a state
    /// file that is not ours, not readable or not one of ours.
    pub(super) fn open(plan: &str, mode: Mode) -> Result<Handlers, OpError> {
        check_name("plan", plan)?;
        let tool = crate::agent::tool();
        let path = state_dir()?
            .join(&tool)
            .join(format!("{plan}.handlers.json"));
        Handlers::at(path, &tool, plan, mode)
    }

    /// As [`open`](Handlers::open), with the state file at `path`.
    pub(super) fn at(
        path: PathBuf,
        tool: &str,
        plan: &str,
        mode: Mode,
    ) -> Result<Handlers, OpError> {
        let earlier = read(&path, tool, plan)?;
        Ok(Handlers {
            plan: plan.to_owned(),
            mode,
            tool: tool.to_owned(),
            path,
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            earlier,
            notified: Vec::new(),
            reached: Vec::new(),
        })
    }

    /// The mode of the run.
    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    /// The state file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Step `by` changed something and notifies `handler`: kept in
    /// memory, and in [`Mode::Apply`] written to the state file before
    /// this returns. A handler notified twice keeps its first step.
    ///
    /// # Errors
    /// The state file cannot be read back or written.
    pub(super) fn notify(&mut self, handler: &str, by: &str) -> Result<(), OpError> {
        if self.notified.iter().any(|p| p.handler == handler) {
            return Ok(());
        }
        let by: String = by.chars().take(MAX_HANDLER_NAME).collect();
        let pending = Pending {
            handler: handler.to_owned(),
            by,
            since: self.started,
        };
        if self.mode == Mode::Apply {
            let full = self.error(format!(
                "{MAX_PENDING} handlers are pending already, the most a plan keeps: \
                 run the plan's handlers, or remove the file if they are not wanted"
            ));
            self.update(true, |now| {
                if now.iter().any(|p| p.handler == handler) {
                    return Ok(false);
                }
                if now.len() >= MAX_PENDING {
                    return Err(full);
                }
                now.push(pending.clone());
                Ok(true)
            })?;
        }
        self.notified.push(pending);
        Ok(())
    }

    /// Whether `handler` is due, and why: `None` when it was not notified
    /// and is not pending, or this run reached it already (a handler runs
    /// once per run). Marks it reached.
    pub(super) fn reach(&mut self, handler: &str) -> Option<Reason> {
        if self.reached.iter().any(|h| h == handler) {
            return None;
        }
        self.reached.push(handler.to_owned());
        let now = self.notified.iter().find(|p| p.handler == handler);
        let earlier = self.earlier.iter().find(|p| p.handler == handler);
        match (now, earlier) {
            (Some(p), _) => Some(Reason::Notified(p.by.clone())),
            (None, Some(p)) => Some(Reason::Pending(p.since)),
            (None, None) => None,
        }
    }

    /// `handler` succeeded: in [`Mode::Apply`], no longer pending (the
    /// file goes when nothing is).
    ///
    /// # Errors
    /// The state file cannot be read back or written.
    pub(super) fn done(&mut self, handler: &str) -> Result<(), OpError> {
        self.earlier.retain(|p| p.handler != handler);
        if self.mode == Mode::Check {
            return Ok(());
        }
        self.update(false, |now| {
            let before = now.len();
            now.retain(|p| p.handler != handler);
            Ok(now.len() != before)
        })
    }

    /// Changes the state file under a lock on its directory, so that
    /// another run of this tool's plans by this user waits (up to
    /// [`LOCK_TIME`]) rather than overwrite what this one writes: `change`
    /// edits what is pending now and says whether it changed it. `create`:
    /// make the directories when they are missing (else there is nothing
    /// to change).
    fn update(
        &self,
        create: bool,
        change: impl FnOnce(&mut Vec<Pending>) -> Result<bool, OpError>,
    ) -> Result<(), OpError> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        if create {
            private_dir(dir.parent().unwrap_or(Path::new("/")))?;
            private_dir(dir)?;
        } else if !matches!(files::entry_at(dir), Ok(Some(e)) if e.kind == Kind::Dir) {
            return Ok(());
        }
        let _held = lock(dir)?;
        let mut now = read(&self.path, &self.tool, &self.plan)?;
        match change(&mut now)? {
            true => self.write(now),
            false => Ok(()),
        }
    }

    /// Replaces the state file with `pending` (removes it when empty).
    fn write(&self, pending: Vec<Pending>) -> Result<(), OpError> {
        let writer = Writer::new();
        if pending.is_empty() {
            return match files::entry_at(&self.path) {
                Ok(None) => Ok(()),
                _ => writer.remove_file(&self.path),
            };
        }
        let state = State {
            format: FORMAT.to_owned(),
            version: VERSION,
            tool: self.tool.clone(),
            plan: self.plan.clone(),
            pending,
        };
        let mut json = serde_json::to_vec_pretty(&state)
            .map_err(|e| self.error(format!("cannot encode the state: {e}")))?;
        json.push(b'\n');
        if json.len() > MAX_HANDLER_STATE {
            return Err(self.error(format!(
                "the pending handlers take more than {MAX_HANDLER_STATE} bytes: \
                 use shorter handler and step names"
            )));
        }
        writer.write_file(&self.path, &json, 0o600, &Owner::default())
    }

    fn error(&self, message: String) -> OpError {
        OpError::new(OP, self.path.display(), message)
    }
}

/// How long a run waits for another run's hold on a state directory.
const LOCK_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Holds `dir` (ours, private) against other runs: an exclusive `flock`,
/// released when the returned file is dropped.
fn lock(dir: &Path) -> Result<std::fs::File, OpError> {
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
/// else `$XDG_STATE_HOME/chopsticks` or `~/.local/state/chopsticks`.
fn state_dir() -> Result<PathBuf, OpError> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from("/var/lib/chopsticks"));
    }
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        });
    match base {
        Some(base) => Ok(base.join("chopsticks")),
        None => Err(OpError::new(
            OP,
            "handler state",
            "neither XDG_STATE_HOME nor HOME is set to an absolute path on the host, so \
             pending handlers have nowhere to be kept: set HOME for this user",
        )),
    }
}

/// Makes sure `dir` is a directory of ours, mode 700 (created, with its
/// missing parents, when absent).
fn private_dir(dir: &Path) -> Result<(), OpError> {
    let fail = |m: String| OpError::new(OP, dir.display(), m);
    let entry = files::entry_at(dir).map_err(|e| fail(describe(&e)))?;
    let Some(entry) = entry else {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| fail(format!("cannot create its parent: {}", describe(&e))))?;
        }
        return Writer::new().create_dir(dir, 0o700);
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

fn euid() -> u32 {
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
fn read(path: &Path, tool: &str, plan: &str) -> Result<Vec<Pending>, OpError> {
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
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            dir.open_file(&name).map_err(|e| fail(describe(&e)))?,
            MAX_HANDLER_STATE as u64 + 1,
        ),
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
    let state: State = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if state.format != FORMAT {
        return Err(corrupt(format!(
            "its format is {:?}",
            shorten(&state.format)
        )));
    }
    if state.version > VERSION {
        return Err(fail(format!(
            "was written by a newer chopsticks (state version {}, this build reads {VERSION}): \
             run the newer build, or {remove}",
            state.version
        )));
    }
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

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
