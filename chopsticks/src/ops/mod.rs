//! Idempotent operations with check and diff modes.
//!
//! An operation is an ordinary `#[remote]` function that takes its spec and
//! a [`Mode`] and returns a [`Change`]: so calls, groups, queues, timeouts
//! and errors work as for any function, and `Mode::Check` shows what
//! `Mode::Apply` would do without doing it.
//!
//! ```
//! use chopsticks::{ops, Tunnel};
//! use chopsticks::ops::Mode;
//!
//! #[chopsticks::main]
//! fn main() -> chopsticks::Result<()> {
//!     let dir = std::env::temp_dir().join(format!("ops-doc-{}", std::process::id()));
//!     let t = Tunnel::local()?;
//!     let motd = ops::File::new(dir.join("motd")).content("hello\n").mode(0o644);
//!     t.call(ops::directory, (ops::Directory::new(&dir), Mode::Apply))?;
//!     let preview = t.call(ops::file, (motd.clone(), Mode::Check))?;
//!     assert!(preview.changed && !dir.join("motd").exists()); // nothing written
//!     let applied = t.call(ops::file, (motd.clone(), Mode::Apply))?;
//!     assert_eq!(applied.changed, preview.changed);
//!     assert!(!t.call(ops::file, (motd, Mode::Apply))?.changed); // idempotent
//!     # std::fs::remove_dir_all(dir).unwrap();
//!     Ok(())
//! }
//! ```
//!
//! # Check mode is structural
//!
//! Every operation first computes a [`Plan`]: what is there, what would
//! change, the diff. Only [`Plan::run`] in `Mode::Apply` hands the plan's
//! apply step a [`Writer`], the value every write helper of this module
//! needs, and nothing else can make one. So in `Mode::Check` the same code
//! runs up to the point where it would write, and cannot write.
//!
//! # Links
//!
//! One rule for every operation that writes a file's content
//! ([`file`](struct@file), [`line`](struct@line)): a symbolic link at the path is refused, never
//! replaced by a file unasked (think `/etc/resolv.conf`), unless the spec
//! says `follow(true)`: then the file the link points to is managed. Only
//! [`symlink`] manages links themselves; [`authorized_key`](struct@authorized_key) refuses a
//! link at `~/.ssh` or its `authorized_keys`, and [`git`](struct@git) one at its
//! checkout. On the way to any path, a link is
//! followed only when root or the operation's own user owns it: a link
//! someone else owns is theirs to point elsewhere between the plan and the
//! write, and is refused. Every write goes through the [`Writer`] relative
//! to the directory it lands in, held open, never through a link at its
//! own name.
//!
//! # Files from elsewhere
//!
//! [`download`](struct@download) makes a file hold a URL's content,
//! checked by SHA-256: by default this machine fetches it once (with its
//! `curl`) and sends it to each host that lacks it, through
//! [`Tunnel::download`](crate::Tunnel::download) and
//! [`Group::download`](crate::Group::download), so hosts need no internet
//! access; [`Download::on_host`] has the host fetch it with its own `curl`
//! or `wget`.
//!
//! `unarchive` (with the crate feature `archive` only: it adds pure-Rust
//! tar, gzip, xz, zstd and zip decoders to the shipped program) unpacks an
//! archive on the host, or one on this machine through
//! `Tunnel::unarchive` / `Group::unarchive`, into a directory: entries
//! that would land outside it are refused before anything is written, and
//! its size and entry count are bounded.
//!
//! # Your own operations
//!
//! Plan with reads only, and write only through the [`Writer`]:
//!
//! ```
//! use chopsticks::ops::{self, Change, Mode, OpError, Plan};
//! use chopsticks::remote;
//!
//! /// Makes sure `path` holds `value` followed by a newline.
//! #[remote]
//! pub fn sysctl_file(path: String, value: String, mode: Mode) -> Result<Change, OpError> {
//!     let want = format!("{value}\n");
//!     let have = std::fs::read_to_string(&path).unwrap_or_default();
//!     if have == want {
//!         return Plan::unchanged(format!("{path} holds {value}")).run(mode);
//!     }
//!     let diff = ops::diff(&path, have.as_bytes(), want.as_bytes());
//!     Plan::change(format!("{path}: set to {value}"), diff, move |w| {
//!         w.write_file(std::path::Path::new(&path), want.as_bytes(), 0o644, &ops::Owner::default())
//!     })
//!     .run(mode)
//! }
//! # fn main() {}
//! ```
//!
//! Because operations are plain functions, a `#[remote]` function of yours
//! can run several of them on the agent, one round trip for a whole host's
//! plan, and collect their changes in a [`Report`].

mod accounts;
mod apt_repos;
#[cfg(feature = "archive")]
mod archive;
mod backup;
mod blocks;
mod crontabs;
mod diff;
mod digest;
mod downloads;
mod exec;
mod handlers;
mod hostnames;
mod keys;
mod landing;
mod lines;
mod mounts;
mod packages;
mod paths;
mod process;
mod recap;
mod report;
mod repos;
mod services;
mod sysctls;
#[cfg(feature = "template")]
mod templates;
mod text;
mod tools;
mod write;

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use accounts::{unix_group, user, UnixGroup, User};
pub use apt_repos::{apt_repository, AptRepository};
#[cfg(feature = "archive")]
pub use archive::{unarchive, Unarchive, MAX_ENTRIES, MAX_UNPACKED};
pub use blocks::{block, Block};
pub use crontabs::{cron, Cron};
pub use diff::{diff, DIFF_TIME, MAX_DIFF, MAX_DIFF_TEXT};
pub use digest::set_digest_key;
pub use downloads::{download, Download, DOWNLOAD_TIME, MAX_DOWNLOAD};
pub use exec::{command, ChangedWhen, Command, CommandOutput};
pub use handlers::{MAX_HANDLER_NAME, MAX_HANDLER_STATE, MAX_PENDING};
pub use hostnames::{hostname, Hostname};
pub use keys::{authorized_key, AuthorizedKey};
pub use landing::VALIDATE_TIME;
pub use lines::{line, Line};
pub use mounts::{mount, Mount, MOUNT_TIME};
pub use packages::{package, Package};
pub use paths::{directory, file, symlink, Directory, File, Symlink};
pub use process::MAX_OUTPUT;
pub use recap::{Changes, HostRecap, Recap};
pub use report::Report;
pub use repos::{git, url_shown, Git};
pub use services::{service, Service};
pub use sysctls::{sysctl, Sysctl, SYSCTL_FILE};
#[cfg(feature = "template")]
pub use templates::{template, Template, MAX_TEMPLATE, TEMPLATE_FUEL};
pub use text::{Anchor, MAX_REGEX};
pub use write::{Owner, Writer};

/// Whether an operation changes the host or only says what it would change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Make the change.
    #[default]
    Apply,
    /// Compute the change and its diff, change nothing.
    Check,
}

impl Mode {
    /// The mode an operation runs in here: [`Mode::Check`] in a
    /// check-only agent ([`agent::check_only`](crate::agent::check_only)),
    /// whatever it was given.
    pub(crate) fn here(self) -> Mode {
        match crate::agent::check_only() {
            true => Mode::Check,
            false => self,
        }
    }
}

/// What an operation changed, or in [`Mode::Check`] would change.
///
/// Two changes are equal when they say the same (`changed`, `diff`,
/// `summary`, `output`, `backup`, `digest`): their [`duration`](Change::duration)
/// is left out, as two runs never take the same time, so a check run's
/// change equals the apply run's that did what it said.
///
/// Fields may be added to this struct in later versions: code that builds
/// a `Change` by hand should end its literal with `..Change::default()`.
/// Between controller and agent a `Change` travels as postcard, which
/// knows no optional fields, so a new field changes the protocol
/// (`PROTOCOL_VERSION`), and the handshake refuses an agent built from
/// older source by naming both versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Change {
    /// Whether anything changed (would change).
    pub changed: bool,
    /// A unified diff of content changes, when there are any and they are
    /// not secret; `None` otherwise.
    pub diff: Option<String>,
    /// One line per thing: what is, or what changes.
    pub summary: String,
    /// What a command printed and how it ended ([`command`] only).
    pub output: Option<CommandOutput>,
    /// Where the old content was kept, when the operation was asked for a
    /// backup and replaced a file (`NAME.<timestamp>~` beside it). Only
    /// [`Mode::Apply`] has one; the summary of both modes says it will be
    /// kept.
    #[serde(default)]
    pub backup: Option<String>,
    /// How long the step took on the host, measured there by
    /// [`Plan::run`]: on an agent, from the start of the call (or the end
    /// of the call's previous step, for several operations in one call)
    /// to the end of its apply step, so the plan's reads count; called
    /// outside an agent, from the plan to the end of its apply step.
    /// `None` in changes made by hand. (`#[serde(default)]` lets JSON
    /// written before this field read back; the wire protocol does not
    /// rely on it: see the type's doc.)
    #[serde(default)]
    pub duration: Option<Duration>,
    /// A keyed digest (HMAC-SHA256, hex) of the content the step writes
    /// (would write), when the agent was given a key by
    /// [`set_digest_key`] and the step writes content ([`File`],
    /// [`Template`], [`Line`], [`Block`]); `None`
    /// otherwise. It compares content between a reviewed check run and
    /// its apply where no diff can (secret content, binary, too large),
    /// without revealing it.
    #[serde(default)]
    pub digest: Option<String>,
}

impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        // Not `duration`: see the type's doc.
        let Change {
            changed,
            diff,
            summary,
            output,
            backup,
            duration: _,
            digest,
        } = self;
        *changed == other.changed
            && *diff == other.diff
            && *summary == other.summary
            && *output == other.output
            && *backup == other.backup
            && *digest == other.digest
    }
}

impl Eq for Change {}

/// Why an operation failed: the operation, its target (a path, a unit ...)
/// and what to do. The host is named by the [`chopsticks::Error`](crate::Error)
/// it arrives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpError {
    /// The operation, e.g. `ops::file`.
    pub operation: String,
    /// What it works on.
    pub target: String,
    /// What went wrong, and what to do.
    pub message: String,
}

impl OpError {
    /// An error of `operation` on `target`.
    pub fn new(
        operation: impl Into<String>,
        target: impl fmt::Display,
        message: impl Into<String>,
    ) -> OpError {
        OpError {
            operation: operation.into(),
            target: target.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.operation, self.target, self.message)
    }
}

impl std::error::Error for OpError {}

/// The step that makes a planned change, given the means to write.
type Apply = Box<dyn FnOnce(&Writer) -> Result<(), OpError>>;

/// A read-only step that [`Mode::Check`] runs in place of the apply step:
/// what apply checks as it writes (a validation), checked without writing.
type CheckStep = Box<dyn FnOnce() -> Result<(), OpError>>;

/// What an operation found: the [`Change`] it would make and the step that
/// makes it. Only [`run`](Plan::run) in [`Mode::Apply`] runs that step.
pub struct Plan {
    change: Change,
    apply: Option<Apply>,
    check: Option<CheckStep>,
    /// When the plan was made: where its duration starts outside an agent.
    made: Instant,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("change", &self.change)
            .finish()
    }
}

impl Plan {
    /// Nothing to change; `summary` says what is there.
    pub fn unchanged(summary: impl Into<String>) -> Plan {
        Plan {
            change: Change {
                changed: false,
                diff: None,
                summary: summary.into(),
                output: None,
                backup: None,
                duration: None,
                digest: None,
            },
            apply: None,
            check: None,
            made: Instant::now(),
        }
    }

    /// A change: what it is, its diff, and the step that makes it.
    pub fn change(
        summary: impl Into<String>,
        diff: Option<String>,
        apply: impl FnOnce(&Writer) -> Result<(), OpError> + 'static,
    ) -> Plan {
        Plan {
            change: Change {
                changed: true,
                diff,
                summary: summary.into(),
                output: None,
                backup: None,
                duration: None,
                digest: None,
            },
            apply: Some(Box::new(apply)),
            check: None,
            made: Instant::now(),
        }
    }

    /// A step that refreshes what later planning reads (a package
    /// manager's lists) and changes nothing the operation describes: it
    /// runs in [`Mode::Apply`] only, like a change, and reports unchanged.
    pub fn refresh(
        summary: impl Into<String>,
        apply: impl FnOnce(&Writer) -> Result<(), OpError> + 'static,
    ) -> Plan {
        Plan {
            apply: Some(Box::new(apply)),
            ..Plan::unchanged(summary)
        }
    }

    /// `check` runs in [`Mode::Check`] (only) when the plan has a change:
    /// a read-only test of what the apply step would refuse, so that check
    /// mode fails where apply would.
    pub(crate) fn on_check(
        mut self,
        check: impl FnOnce() -> Result<(), OpError> + 'static,
    ) -> Plan {
        self.check = Some(Box::new(check));
        self
    }

    /// Runs this plan's apply step with the writer of a plan it is part
    /// of (an operation made of others').
    pub(crate) fn apply_with(self, w: &Writer) -> Result<(), OpError> {
        match self.apply {
            Some(apply) => apply(w),
            None => Ok(()),
        }
    }

    /// What the plan changes (or would).
    pub fn planned(&self) -> &Change {
        &self.change
    }

    /// In [`Mode::Apply`] makes the change; in [`Mode::Check`] only says
    /// what it would be. In a check-only agent
    /// ([`TunnelBuilder::check_only`](crate::TunnelBuilder::check_only))
    /// always the latter.
    ///
    /// # Errors
    /// The apply step's.
    pub fn run(self, mode: Mode) -> Result<Change, OpError> {
        let mode = mode.here();
        let start = step_start(self.made);
        let mut change = self.change;
        match (mode, self.apply, self.check) {
            (Mode::Apply, Some(apply), _) => {
                let writer = Writer::new();
                apply(&writer)?;
                change.backup = writer
                    .take_backup()
                    .map(|p| p.to_string_lossy().into_owned());
            }
            (Mode::Check, _, Some(check)) if change.changed => check()?,
            _ => {}
        }
        change.duration = Some(step_end(start));
        Ok(change)
    }
}

thread_local! {
    /// The call a step last ended in on this thread (when it started) and
    /// when that step ended: where the call's next step starts.
    static LAST_STEP: Cell<Option<(Instant, Instant)>> = const { Cell::new(None) };
}

/// Where the step a plan made at `made` ends started: the end of the
/// previous step of the same agent call, else the call's start, else
/// (outside an agent) `made`.
fn step_start(made: Instant) -> Instant {
    let Some(call) = chopsticks_agent::call_started() else {
        return made;
    };
    match LAST_STEP.with(Cell::get) {
        Some((last_call, ended)) if last_call == call => ended,
        _ => call,
    }
}

/// How long the step that started at `start` took; records its end for
/// the next step of the same call.
fn step_end(start: Instant) -> Duration {
    let now = Instant::now();
    if let Some(call) = chopsticks_agent::call_started() {
        LAST_STEP.with(|l| l.set(Some((call, now))));
    }
    now.saturating_duration_since(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step's duration is measured and carried, and left out of
    /// comparisons: a check run's change equals the apply run's.
    #[test]
    fn durations_are_measured_and_not_compared() {
        let slow = Plan::change("wait", None, |_| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        });
        let applied = slow.run(Mode::Apply).unwrap();
        assert!(applied.duration.unwrap() >= Duration::from_millis(20));
        let checked = Plan::change("wait", None, |_| Ok(()))
            .run(Mode::Check)
            .unwrap();
        assert!(checked.duration.unwrap() < Duration::from_millis(20));
        assert_eq!(checked, applied);
        let other = Change {
            summary: "other".into(),
            ..applied.clone()
        };
        assert_ne!(other, applied);
        // Changes from hosts without the field still read.
        let old: Change =
            serde_json::from_str(r#"{"changed":true,"diff":null,"summary":"s","output":null}"#)
                .unwrap();
        assert_eq!(old.duration, None);
    }

    /// A change crosses the wire (postcard) whole, with and without its
    /// duration.
    #[test]
    fn changes_round_trip_through_postcard() {
        let timed = Change {
            changed: true,
            diff: Some("-a\n+b\n".into()),
            summary: "/etc/motd: content changed".into(),
            backup: Some("/etc/motd.1~".into()),
            duration: Some(Duration::from_micros(1_234_567)),
            ..Change::default()
        };
        for change in [
            timed.clone(),
            Change {
                duration: None,
                ..timed
            },
        ] {
            let bytes = postcard::to_allocvec(&change).unwrap();
            let back: Change = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, change);
            assert_eq!(back.duration, change.duration);
        }
    }
}
