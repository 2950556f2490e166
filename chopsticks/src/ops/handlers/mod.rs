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
//! its directory, so two runs at once keep each other's notifications.
//! TOOL is [`crate::agent::tool`]: the program's name, which a new build
//! keeps.
//!
//! [`Report::notify`]: super::Report::notify
//! [`Report::handler`]: super::Report::handler

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{backup, Mode, OpError};
use crate::files::{self, Kind};

mod state;

/// The longest plan or handler name, in bytes.
pub const MAX_HANDLER_NAME: usize = 128;

/// The most handlers one plan may have pending at once.
pub const MAX_PENDING: usize = 64;

/// The largest handler state file read, in bytes.
pub const MAX_HANDLER_STATE: usize = 64 << 10;

/// What every error here names as its operation.
const OP: &str = "ops::Report";

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
        let path = state::dir()?
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
        let earlier = state::read(&path, tool, plan)?;
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
    /// 10 s) rather than overwrite what this one writes: `change`
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
            state::private_dir(dir.parent().unwrap_or(Path::new("/")))?;
            state::private_dir(dir)?;
        } else if !matches!(files::entry_at(dir), Ok(Some(e)) if e.kind == Kind::Dir) {
            return Ok(());
        }
        let _held = state::lock(dir)?;
        let mut now = state::read(&self.path, &self.tool, &self.plan)?;
        match change(&mut now)? {
            true => state::write(&self.path, &self.tool, &self.plan, now),
            false => Ok(()),
        }
    }

    fn error(&self, message: String) -> OpError {
        OpError::new(OP, self.path.display(), message)
    }
}

#[cfg(test)]
mod tests;
