//! Handlers that are never lost: what [`Report::notify`] and
//! [`Report::handler`] keep of a plan's notifications, in memory and, in
//! [`Mode::Apply`], in a small state file on the host, per tool and plan:
//!
//! - root's: `/var/lib/chopsticks/TOOL/PLAN.handlers.json`;
//! - a user's: `$XDG_STATE_HOME/chopsticks/...`, by default
//!   `HOME/.local/state/chopsticks/TOOL/PLAN.handlers.json`, HOME from
//!   the password database.
//!
//! A notification is written there as soon as it is made and removed only
//! when its handler succeeds, so a run that fails or is interrupted in
//! between leaves it pending for the next run. (A run killed between the
//! step's last write and the notification loses it;
//! `Report::run_notifying` lists the handlers before the step instead.)
//! Each entry names its run (a random id) and the handler's success
//! removes only the entries it saw when it started. The directories are mode
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
/// started at `since` (seconds since the epoch); `run` tells this entry
/// from any other: the run's random id and the notification's number in
/// it (`ID.N`; empty in files of builds before it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub handler: String,
    pub by: String,
    pub since: u64,
    #[serde(default)]
    pub run: String,
}

/// Why a handler runs (or would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reason {
    /// A step of this run changed something and notified it.
    Notified(String),
    /// Another run (an earlier one that did not finish it, or one at the
    /// same time) notified it at `since`, from step `by`.
    Pending { since: u64, by: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Notified(step) => write!(f, "notified by {step}"),
            Reason::Pending { since, by } => write!(
                f,
                "pending since {} UTC (notified by {by}; an earlier run did not finish it)",
                backup::timestamp(UNIX_EPOCH + std::time::Duration::from_secs(*since))
            ),
        }
    }
}

/// A notification made after its handler was reached in this run: kept
/// pending for the next run, and the report fails with this.
pub(super) fn late(handler: &str, by: &str, mode: Mode) -> OpError {
    let kept = match mode {
        Mode::Apply => "is kept pending",
        Mode::Check => "would be kept pending",
    };
    OpError::new(
        OP,
        handler,
        format!(
            "notified by {by} after its handler was declared (it {kept} for the next \
             run): declare handlers after the steps that notify them"
        ),
    )
}

/// A random id for one run: 16 hex digits from `/dev/urandom`, or from
/// the time and the process id when it cannot be read.
fn run_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    let n = match random {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    };
    format!("{n:016x}")
}

/// A plan's handlers in one run: its identity, what was pending when it
/// started, what this run notified, which handlers it reached and the
/// entries each handler running now will clear.
#[derive(Debug, Clone, Default)]
pub(super) struct Handlers {
    pub plan: String,
    mode: Mode,
    tool: String,
    path: PathBuf,
    started: u64,
    run: String,
    /// How many notifications this run recorded.
    recorded: u32,
    earlier: Vec<Pending>,
    notified: Vec<Pending>,
    reached: Vec<String>,
    /// The entries of the state file seen when a handler started: what
    /// its success removes (not what another run added since).
    claimed: Vec<Pending>,
}

impl Handlers {
    /// The handlers of the plan `plan` of this tool, with what an earlier
    /// run left pending. In [`Mode::Apply`] the state directories are
    /// made (or checked) here, so a host where notifications could not
    /// be recorded stops the plan before any step.
    ///
    /// # Errors
    /// A bad plan name; no tool name; no state directory (no home for a
    /// user), or one that is not ours; a state file that is not ours, not
    /// readable or not one of ours.
    pub(super) fn open(plan: &str, mode: Mode) -> Result<Handlers, OpError> {
        let mode = mode.here();
        check_name("plan", plan)?;
        let Some(tool) = crate::agent::tool_if_named() else {
            return Err(OpError::new(
                OP,
                format!("plan {plan:?}"),
                "this agent was not told its tool's name (CHOPSTICKS_TOOL), which its \
                 pending handlers are kept by: start it through a Tunnel of this kit's \
                 version, or run the plan without handlers (Report::new())",
            ));
        };
        let path = state::dir()?
            .join(&tool)
            .join(format!("{plan}.handlers.json"));
        let handlers = Handlers::at(path, &tool, plan, mode)?;
        if mode == Mode::Apply {
            handlers.private_dirs()?;
        }
        Ok(handlers)
    }

    /// As [`open`](Handlers::open), with the state file at `path` (its
    /// directories are made on the first notification).
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
            run: run_id(),
            recorded: 0,
            earlier,
            notified: Vec::new(),
            reached: Vec::new(),
            claimed: Vec::new(),
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
    /// this returns, unless the file lists it already (and no handler of
    /// this run claimed that entry). A handler notified twice keeps its
    /// first step.
    ///
    /// Returns `false` when `handler` was reached in this run already
    /// (see [`late`]): the notification is kept for the next run.
    ///
    /// # Errors
    /// The state file cannot be read back or written.
    pub(super) fn notify(&mut self, handler: &str, by: &str) -> Result<bool, OpError> {
        let by: String = by.chars().take(MAX_HANDLER_NAME).collect();
        self.recorded += 1;
        let pending = Pending {
            handler: handler.to_owned(),
            by: by.clone(),
            since: self.started,
            run: format!("{}.{}", self.run, self.recorded),
        };
        if self.mode == Mode::Apply {
            let full = self.error(format!(
                "{MAX_PENDING} handlers are pending already, the most a plan keeps: \
                 run the plan's handlers, or remove the file if they are not wanted"
            ));
            let (claimed, mine) = (&self.claimed, format!("{}.", self.run));
            self.update(true, |now| {
                // One entry a handler: this run's, unless this run listed
                // it already and no handler of this run has claimed that.
                // Another run's entry is replaced, never kept for a
                // handler that started before this notification to clear.
                let own = |p: &Pending| p.handler == handler && p.run.starts_with(&mine);
                if now.iter().any(|p| own(p) && !claimed.contains(p)) {
                    return Ok(false);
                }
                now.retain(|p| p.handler != handler);
                if now.len() >= MAX_PENDING {
                    return Err(full);
                }
                now.push(pending.clone());
                Ok(true)
            })?;
        }
        if self.reached.iter().any(|h| h == handler) {
            return Ok(false);
        }
        if !self.notified.iter().any(|p| p.handler == handler) {
            self.notified.push(pending);
        }
        Ok(true)
    }

    /// Before step `by` runs ([`Report::run_notifying`]), in
    /// [`Mode::Apply`]: lists `handler` in the state file unless this run
    /// listed it already (unclaimed), keeping any other run's entry. Returns
    /// the entry listed, for [`unrecord`](Handlers::unrecord) when the step
    /// changes nothing.
    ///
    /// # Errors
    /// The state file cannot be read back or written, or is full.
    ///
    /// [`Report::run_notifying`]: super::Report::run_notifying
    pub(super) fn record(&mut self, handler: &str, by: &str) -> Result<Option<Pending>, OpError> {
        if self.mode == Mode::Check {
            return Ok(None);
        }
        self.recorded += 1;
        let entry = Pending {
            handler: handler.to_owned(),
            by: by.chars().take(MAX_HANDLER_NAME).collect(),
            since: self.started,
            run: format!("{}.{}", self.run, self.recorded),
        };
        let full = self.error(format!(
            "{MAX_PENDING} handlers are pending already, the most a plan keeps: \
             run the plan's handlers, or remove the file if they are not wanted"
        ));
        let (claimed, mine) = (&self.claimed, format!("{}.", self.run));
        let mut listed = None;
        self.update(true, |now| {
            let own = |p: &Pending| p.handler == handler && p.run.starts_with(&mine);
            if now.iter().any(|p| own(p) && !claimed.contains(p)) {
                return Ok(false);
            }
            if now.len() >= MAX_PENDING {
                return Err(full);
            }
            now.push(entry.clone());
            listed = Some(entry.clone());
            Ok(true)
        })?;
        Ok(listed)
    }

    /// Removes `entry` ([`record`](Handlers::record)) from the state
    /// file: its step changed nothing.
    ///
    /// # Errors
    /// The state file cannot be read back or written.
    pub(super) fn unrecord(&mut self, entry: &Pending) -> Result<(), OpError> {
        self.update(false, |now| {
            let before = now.len();
            now.retain(|p| p != entry);
            Ok(now.len() != before)
        })
    }

    /// Whether `handler` is due, and why: `None` when it was not notified
    /// and is not pending, or this run reached it already (a handler runs
    /// once per run). Marks it reached; in [`Mode::Apply`] re-reads the
    /// state file and claims its entries for `handler`, which
    /// [`done`](Handlers::done) then removes.
    ///
    /// # Errors
    /// The state file cannot be read.
    pub(super) fn reach(&mut self, handler: &str) -> Result<Option<Reason>, OpError> {
        if self.reached.iter().any(|h| h == handler) {
            return Ok(None);
        }
        self.reached.push(handler.to_owned());
        let listed = match self.mode {
            Mode::Apply => state::read(&self.path, &self.tool, &self.plan)?,
            Mode::Check => self.earlier.clone(),
        };
        self.claimed
            .extend(listed.into_iter().filter(|p| p.handler == handler));
        let now = self.notified.iter().find(|p| p.handler == handler);
        let other = self
            .claimed
            .iter()
            .chain(&self.earlier)
            .find(|p| p.handler == handler && !p.run.starts_with(&format!("{}.", self.run)));
        Ok(match (now, other) {
            (Some(p), _) => Some(Reason::Notified(p.by.clone())),
            (None, Some(p)) => Some(Reason::Pending {
                since: p.since,
                by: p.by.clone(),
            }),
            (None, None) => None,
        })
    }

    /// `handler` succeeded: in [`Mode::Apply`], the entries claimed when
    /// it started are no longer pending (the file goes when nothing is).
    ///
    /// # Errors
    /// The state file cannot be read back or written.
    pub(super) fn done(&mut self, handler: &str) -> Result<(), OpError> {
        self.earlier.retain(|p| p.handler != handler);
        let (mine, rest) = std::mem::take(&mut self.claimed)
            .into_iter()
            .partition(|p| p.handler == handler);
        self.claimed = rest;
        if self.mode == Mode::Check {
            return Ok(());
        }
        let mine: Vec<Pending> = mine;
        self.update(false, |now| {
            let before = now.len();
            now.retain(|p| !mine.contains(p));
            Ok(now.len() != before)
        })
    }

    /// Makes sure both state directories are ours and private (made when
    /// missing).
    fn private_dirs(&self) -> Result<(), OpError> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        state::private_dir(dir.parent().unwrap_or(Path::new("/")))?;
        state::private_dir(dir)
    }

    /// Changes the state file under a lock on its directory, so that
    /// another run of this tool's plans by this user waits (up to
    /// 10 s) rather than overwrite what this one writes: `change`
    /// edits what is pending now and says whether it changed it. The
    /// directories are checked (ours, private) each time; `create`: make
    /// them when they are missing (else there is nothing to change).
    fn update(
        &self,
        create: bool,
        change: impl FnOnce(&mut Vec<Pending>) -> Result<bool, OpError>,
    ) -> Result<(), OpError> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        if !create && !matches!(files::entry_at(dir), Ok(Some(e)) if e.kind == Kind::Dir) {
            return Ok(());
        }
        self.private_dirs()?;
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
