//! [`Report`]: the changes of a plan's steps on one host, in order.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::handlers::{check_name, late, Handlers};
use super::{Change, Mode, OpError};

/// The changes of several operations, in order: what a per-host plan run
/// on the agent returns. A plan that [`run`](Report::run)s its steps
/// through it keeps what the steps before a failure changed, and skips
/// the steps after it: their names are kept in
/// [`skipped`](Report::skipped), so that a kit shows them as skipped
/// rather than leaving them out.
///
/// ```
/// use chopsticks::ops::{self, Mode, Report};
///
/// #[chopsticks::remote]
/// fn web(mode: Mode) -> Report {
///     let mut report = Report::new();
///     let conf = ops::File::new("/tmp/report-doc.conf").content("port = 80\n");
///     let changed = report.run("config", || ops::file(conf, mode)).is_some_and(|c| c.changed);
///     let reload = ops::Command::new(["true"]).changed_when(ops::ChangedWhen::Always);
///     if changed {
///         report.run("reload", || ops::command(reload, mode));
///     }
///     report
/// }
/// # fn main() {}
/// ```
///
/// # Handlers
///
/// The `if changed` above loses the reload when the run stops between the
/// two steps: the next run finds the file in place, changes nothing, and
/// never reloads. A report made by [`Report::plan`] keeps such follow-ups
/// as handlers: [`notify`](Report::notify) after a step marks a handler
/// when that step changed something, and in [`Mode::Apply`] writes the
/// mark to a small state file on the host at once; [`handler`](Report::handler)
/// runs the handler when this run notified it *or an earlier run left it
/// pending*, and removes the mark only when it succeeds.
///
/// ```
/// use chopsticks::ops::{self, Mode, Report};
///
/// #[chopsticks::remote]
/// fn web(mode: Mode) -> Report {
///     let mut report = Report::plan("web", mode);
///     let conf = ops::File::new("/tmp/report-doc.conf").content("port = 80\n");
///     report.run("config", || ops::file(conf, mode));
///     report.notify("reload");
///     // ... more steps; if one fails, "reload" stays pending for the next run.
///     report.handler("reload", || {
///         ops::service(ops::Service::new("nginx").reloaded(), mode)
///     });
///     report
/// }
/// # fn main() {}
/// ```
///
/// A handler's change says why it ran: `notified by config`, or `pending
/// since 2026-12-07@08:20:11 UTC (notified by config; an earlier run did
/// not finish it)`; in
/// [`Mode::Check`] it reads `would run, ...` and nothing is written. As
/// Ansible's (without `--force-handlers`), handlers do not run after a
/// step failed; unlike Ansible's, they are not lost then: the next run
/// runs them, even when it has nothing else to change. A notification
/// made after its handler was declared (reached) in this run is kept for
/// the next run, and fails the report: declare handlers after the steps
/// that notify them.
///
/// One window remains with [`notify`](Report::notify): a run killed
/// after the step's last write (for a file, the rename that puts it in
/// place) and before `notify` wrote the mark loses the notification: the
/// next run finds the step's work done and nothing pending.
/// [`run_notifying`](Report::run_notifying) closes it by listing the
/// handlers before the step runs and unlisting them when it changed
/// nothing; its failure direction is one handler run too many.
///
/// The state file is per tool and plan: root's under
/// `/var/lib/chopsticks/TOOL/`, a user's under
/// `~/.local/state/chopsticks/TOOL/` (`$XDG_STATE_HOME` honoured), named
/// `PLAN.handlers.json` (the home is the user's in the password database,
/// not `$HOME`). TOOL is [`agent::tool`](crate::agent::tool), the
/// controller program's name, which a new build of it keeps; an agent not
/// told it refuses handlers. Each entry carries its run's random id: a
/// handler's success removes only the entries it saw when it started, so
/// a notification another run makes meanwhile stays.
///
/// # A reviewed plan, applied exactly
///
/// A team that reviews a check run's output before it reaches production
/// wants the apply to do what it read, and nothing else. A tool without
/// the kit (the kit has `--save-plan` and `--apply-plan`) does it in two
/// passes over its hosts:
///
/// 1. Run the plan in [`Mode::Check`] and save each host's `Report` as
///    JSON (it serializes; diffs already leave secrets out): that file is
///    what is reviewed.
/// 2. To apply, read the reviewed reports back and run the plan in
///    [`Mode::Check`] again; where [`differences`](Report::differences)
///    with the reviewed report is not empty (the host drifted, or the tool
///    changed), refuse that host and say why; run it in [`Mode::Apply`] only
///    on the hosts where it is empty.
///
/// ```
/// use chopsticks::ops::{Change, Report};
///
/// let step = |summary: &str| Change { changed: true, summary: summary.into(), ..Change::default() };
/// let mut reviewed = Report::new();
/// reviewed.add("motd", step("/etc/motd: content changed"));
/// let saved = serde_json::to_string(&reviewed).unwrap();
///
/// // The apply run's own check pass, later:
/// let reviewed: Report = serde_json::from_str(&saved).unwrap();
/// let mut now = Report::new();
/// now.add("motd", step("/etc/motd: created"));
/// let drift = now.differences(&reviewed);
/// assert_eq!(
///     drift,
///     ["motd: summary: reviewed `/etc/motd: content changed`, now `/etc/motd: created`"]
/// );
/// // Not empty: refuse this host, and apply only where it is.
/// ```
///
/// An apply pass that differs from its check pass (something changed the
/// host in between) shows the same way: compare the apply's report with
/// the reviewed one too, and report a difference as an error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Each operation's name (as the plan calls it) and its change.
    pub steps: Vec<(String, Change)>,
    /// The step that failed, if one did, and why; the plan's steps after
    /// it did not run.
    pub failed: Option<(String, OpError)>,
    /// The steps that did not run because an earlier one failed, in the
    /// order the plan reached them (a [`handler`](Report::handler) only
    /// when it would have run: notified, or pending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The plan's handlers ([`Report::plan`]); on the agent only.
    #[serde(skip)]
    handlers: Option<Box<Handlers>>,
    /// The step just run, while it is the last thing the report did.
    #[serde(skip)]
    last: Option<usize>,
}

/// Two reports are equal when their steps and failure are: what a plan's
/// handlers kept on the agent does not travel.
impl PartialEq for Report {
    fn eq(&self, other: &Report) -> bool {
        self.steps == other.steps && self.failed == other.failed && self.skipped == other.skipped
    }
}

impl Eq for Report {}

impl Report {
    /// An empty report, for a plan without handlers ([`Report::plan`]
    /// makes one with them).
    pub fn new() -> Report {
        Report::default()
    }

    /// An empty report for the plan `name` run in `mode`, with its
    /// handlers: what an earlier run of this plan (by this tool, as this
    /// user) left pending is read from the host's state file.
    ///
    /// A name that is empty, longer than [`MAX_HANDLER_NAME`](super::MAX_HANDLER_NAME) bytes,
    /// starts with `.` or `-`, or holds a `/` or a control character; a
    /// state file that cannot be read (not ours, not one of ours, of a
    /// newer version); in [`Mode::Apply`], state directories that cannot
    /// be made or are not ours; and an agent that was not told its tool's
    /// name, fail the report at once (as its step `handlers`), so no step
    /// runs: the message names the file and what to do.
    pub fn plan(name: &str, mode: Mode) -> Report {
        let mut report = Report::new();
        match Handlers::open(name, mode) {
            Ok(handlers) => report.handlers = Some(Box::new(handlers)),
            Err(e) => report.failed = Some(("handlers".into(), e)),
        }
        report
    }

    /// Adds one operation's change; returns it, for plans that depend on it.
    pub fn add(&mut self, name: impl Into<String>, change: Change) -> &Change {
        self.steps.push((name.into(), change));
        self.last = Some(self.steps.len() - 1);
        &self.steps[self.steps.len() - 1].1
    }

    /// Runs one operation unless an earlier one failed (then its name goes
    /// to [`skipped`](Report::skipped)), and records its change or its
    /// failure. Returns the change, for steps that depend on it; `None`
    /// when it failed or did not run.
    pub fn run(
        &mut self,
        name: impl Into<String>,
        operation: impl FnOnce() -> Result<Change, OpError>,
    ) -> Option<&Change> {
        self.last = None;
        if self.failed.is_some() {
            self.skipped.push(name.into());
            return None;
        }
        match operation() {
            Ok(change) => Some(self.add(name, change)),
            Err(e) => {
                self.fail(name.into(), e);
                None
            }
        }
    }

    /// As [`run`](Report::run) followed by [`notify`](Report::notify) of
    /// each of `handlers`, without the window between the two: in
    /// [`Mode::Apply`] the handlers are listed in the host's state file
    /// *before* the step runs, and unlisted when it changed nothing. A
    /// run killed at any point then leaves them pending at worst when
    /// nothing changed (the next run runs them once more), never
    /// unrecorded after a change. A step that fails keeps them listed:
    /// it may have changed something before it failed.
    ///
    /// Errors are [`notify`](Report::notify)'s; one met before the step
    /// fails the report and the step does not run.
    ///
    /// ```
    /// use chopsticks::ops::{self, Mode, Report};
    ///
    /// #[chopsticks::remote]
    /// fn web(mode: Mode) -> Report {
    ///     let mut report = Report::plan("web", mode);
    ///     let conf = ops::File::new("/tmp/report-doc.conf").content("port = 80\n");
    ///     report.run_notifying("config", &["reload"], || ops::file(conf, mode));
    ///     report.handler("reload", || {
    ///         ops::service(ops::Service::new("nginx").reloaded(), mode)
    ///     });
    ///     report
    /// }
    /// # fn main() {}
    /// ```
    pub fn run_notifying(
        &mut self,
        name: impl Into<String>,
        handlers: &[&str],
        operation: impl FnOnce() -> Result<Change, OpError>,
    ) -> Option<&Change> {
        self.last = None;
        if self.failed.is_some() {
            self.skipped.push(name.into());
            return None;
        }
        let name = name.into();
        let mut listed = Vec::new();
        for handler in handlers {
            let done = match (check_name("handler", handler), self.handlers.as_deref_mut()) {
                (Err(e), _) => Err(e),
                (Ok(()), None) => Err(no_handlers(handler)),
                (Ok(()), Some(h)) => h.record(handler, &name).map_err(|e| {
                    OpError::new(
                        "ops::Report",
                        e.target.clone(),
                        format!(
                            "handler {handler} could not be recorded before step {name} ({}), \
                             which therefore did not run",
                            e.message
                        ),
                    )
                }),
            };
            match done {
                Ok(entry) => listed.extend(entry),
                Err(e) => {
                    self.fail(handler.to_string(), e);
                    return None;
                }
            }
        }
        let change = match operation() {
            Ok(change) => change,
            Err(e) => {
                self.fail(name, e);
                return None;
            }
        };
        let changed = change.changed;
        self.add(name.clone(), change);
        let step = self.last;
        if changed {
            for handler in handlers {
                self.last = step;
                self.notify(handler);
                if self.failed.is_some() {
                    return None;
                }
            }
        } else if let Some(h) = self.handlers.as_deref_mut() {
            for entry in &listed {
                if let Err(e) = h.unrecord(entry) {
                    let message = format!(
                        "step {name} changed nothing but its handler {} could not be \
                         unlisted ({}): it runs on the next run",
                        entry.handler, e.message
                    );
                    self.fail(
                        entry.handler.clone(),
                        OpError::new("ops::Report", e.target, message),
                    );
                    return None;
                }
            }
        }
        self.last = step;
        step.and_then(|i| self.steps.get(i)).map(|(_, c)| c)
    }

    /// Marks `handler` when the step just run changed something (would
    /// change, in [`Mode::Check`]); does nothing when it changed nothing,
    /// failed or did not run. In [`Mode::Apply`] the mark is written to
    /// the host's state file before this returns; in [`Mode::Check`] it is
    /// kept in memory only. Several steps may notify one handler, and one
    /// step several handlers (call it once for each).
    ///
    /// A bad handler name, a report made by [`Report::new`] (it keeps no
    /// handlers) or a state file that cannot be written (`step S changed
    /// something but handler H could not be recorded (...): run H by
    /// hand`) fail the report (as the step named `handler`). So does a
    /// notification after `handler` was declared in this run: it is kept
    /// for the next run all the same.
    ///
    /// A run killed between the step's last write and this mark loses the
    /// notification; [`run_notifying`](Report::run_notifying) has no such
    /// window.
    pub fn notify(&mut self, handler: &str) {
        let Some(step) = self.last.filter(|_| self.failed.is_none()) else {
            return;
        };
        let Some((by, change)) = self.steps.get(step) else {
            return;
        };
        if !change.changed {
            return;
        }
        let by = by.clone();
        let done = match (check_name("handler", handler), self.handlers.as_deref_mut()) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(no_handlers(handler)),
            (Ok(()), Some(handlers)) => match handlers.notify(handler, &by) {
                Ok(true) => Ok(()),
                Ok(false) => Err(late(handler, &by, handlers.mode())),
                Err(e) => Err(OpError::new(
                    "ops::Report",
                    e.target.clone(),
                    format!(
                        "step {by} changed something but handler {handler} could not be \
                         recorded ({}): run {handler} by hand",
                        e.message
                    ),
                )),
            },
        };
        if let Err(e) = done {
            self.fail(handler.to_owned(), e);
        }
    }

    /// Runs the handler `name` when this run [notified](Report::notify) it
    /// or an earlier run left it pending, once per run however often it
    /// was notified, here (handlers run in the order of these calls).
    /// Its change is recorded as a step named `name`, its summary prefixed
    /// with why it ran (`notified by STEP: ...`, `pending since TIME UTC
    /// (an earlier run did not finish it): ...`; in [`Mode::Check`]
    /// `would run, ...`). In [`Mode::Apply`] its mark is removed from the
    /// host's state file when it succeeds; when it fails, the mark stays
    /// and the failure is the report's.
    ///
    /// After a failed step it does not run, and stays pending for the next
    /// run. Returns its change; `None` when it did not run.
    pub fn handler(
        &mut self,
        name: &str,
        operation: impl FnOnce() -> Result<Change, OpError>,
    ) -> Option<&Change> {
        self.last = None;
        if let Err(e) = check_name("handler", name) {
            if self.failed.is_none() {
                self.fail(name.to_owned(), e);
            }
            return None;
        }
        let handlers = self.handlers.as_deref_mut()?;
        let mode = handlers.mode();
        let why = match handlers.reach(name) {
            Ok(why) => why?,
            Err(e) => {
                if self.failed.is_none() {
                    self.fail(name.to_owned(), e);
                }
                return None;
            }
        };
        if self.failed.is_some() {
            self.skipped.push(name.to_owned());
            return None;
        }
        let mut change = match operation() {
            Ok(change) => change,
            Err(e) => {
                self.fail(name.to_owned(), e);
                return None;
            }
        };
        let would = if mode == Mode::Check {
            "would run, "
        } else {
            ""
        };
        change.summary = format!("{would}{why}: {}", change.summary);
        let cleared = handlers.done(name);
        self.add(name, change);
        if let Err(e) = cleared {
            self.fail(name.to_owned(), e);
        }
        Some(&self.steps[self.steps.len() - 1].1)
    }

    /// The plan's name, for a report made by [`Report::plan`].
    pub fn plan_name(&self) -> Option<&str> {
        self.handlers.as_deref().map(|h| h.plan.as_str())
    }

    /// Where the plan's handler state is kept on the host, for a report
    /// made by [`Report::plan`] (on the agent: the report that comes back
    /// from a call does not carry it).
    pub fn handler_state(&self) -> Option<&std::path::Path> {
        self.handlers.as_deref().map(Handlers::path)
    }

    /// What differs between this report and `reviewed` (one from an
    /// earlier check run, see [A reviewed plan, applied
    /// exactly](Report#a-reviewed-plan-applied-exactly)), one line per
    /// differing step, naming the step and what differs: whether it
    /// changes something, its summary, its diff (the first differing
    /// line) and its content's digest ([`Change::digest`]),
    /// a step one of them has and the other has not, a failure. Durations
    /// and backups are not compared. Steps are matched in order; at the
    /// first step whose name differs the comparison stops, as the steps
    /// after it no longer line up. Empty when the two plan the same.
    ///
    /// ```
    /// use chopsticks::ops::{Change, Report};
    ///
    /// let mut reviewed = Report::new();
    /// reviewed.add("conf", Change { changed: true, summary: "/etc/a.conf: content changed".into(),
    ///     diff: Some("-port = 80\n+port = 81\n".into()), ..Change::default() });
    /// let mut now = reviewed.clone();
    /// assert!(now.differences(&reviewed).is_empty());
    /// now.steps[0].1.diff = Some("-port = 79\n+port = 81\n".into());
    /// assert_eq!(
    ///     now.differences(&reviewed),
    ///     ["conf: diff line 1: reviewed `-port = 80`, now `-port = 79`"]
    /// );
    /// ```
    pub fn differences(&self, reviewed: &Report) -> Vec<String> {
        let mut out = Vec::new();
        let count = self.steps.len().max(reviewed.steps.len());
        for i in 0..count {
            match (reviewed.steps.get(i), self.steps.get(i)) {
                (Some((was_name, was)), Some((name, now))) => {
                    if was_name != name {
                        out.push(format!(
                            "step {}: reviewed `{}`, now `{}` (the steps from here on differ)",
                            i + 1,
                            shown(was_name),
                            shown(name)
                        ));
                        break;
                    }
                    if was.changed != now.changed {
                        out.push(format!(
                            "{name}: reviewed {}, now {} ({})",
                            changes_word(was.changed),
                            changes_word(now.changed),
                            shown(&now.summary)
                        ));
                    } else if was.summary != now.summary {
                        let diff = match first_difference(&was.diff, &now.diff) {
                            Some(line) => format!("; diff {line}"),
                            None => String::new(),
                        };
                        out.push(format!(
                            "{name}: summary: reviewed `{}`, now `{}`{diff}",
                            shown(&was.summary),
                            shown(&now.summary)
                        ));
                    } else if let Some(line) = first_difference(&was.diff, &now.diff) {
                        out.push(format!("{name}: diff {line}"));
                    } else if was.digest != now.digest {
                        out.push(format!("{name}: {}", digest_difference(was, now)));
                    }
                }
                (Some((name, _)), None) => out.push(format!(
                    "{name}: in the reviewed plan, but does not run now{}",
                    match &self.failed {
                        Some((failed, _)) if i == self.steps.len() => {
                            format!(" (step {failed} failed before it)")
                        }
                        _ => String::new(),
                    }
                )),
                (None, Some((name, _))) => {
                    out.push(format!("{name}: runs now, but is not in the reviewed plan"))
                }
                (None, None) => {}
            }
        }
        match (&reviewed.failed, &self.failed) {
            (None, Some((name, e))) => {
                out.push(format!("{name}: fails now: {}", shown(&e.to_string())))
            }
            (Some((name, _)), None) => {
                out.push(format!("{name}: failed in the reviewed plan, not now"))
            }
            (Some((was_name, was)), Some((name, now))) if was_name != name || was != now => out
                .push(format!(
                    "{name}: fails now: {} (the reviewed plan: {was_name}: {})",
                    shown(&now.to_string()),
                    shown(&was.to_string())
                )),
            _ => {}
        }
        out
    }

    /// How many operations changed something.
    pub fn changed(&self) -> usize {
        self.steps.iter().filter(|(_, c)| c.changed).count()
    }

    /// A report with `handlers` (tests give them a state file of their own).
    #[cfg(test)]
    pub(super) fn with_handlers(handlers: Handlers) -> Report {
        Report {
            handlers: Some(Box::new(handlers)),
            ..Report::default()
        }
    }

    fn fail(&mut self, step: String, e: OpError) {
        self.last = None;
        self.failed = Some((step, e));
    }
}

/// How much of a summary or a line a difference shows.
const SHOWN: usize = 200;

/// `text` cut at [`SHOWN`] characters, with `...`.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// How two steps' content digests ([`Change::digest`]) differ.
fn digest_difference(was: &Change, now: &Change) -> String {
    match (&was.digest, &now.digest) {
        (Some(_), None) => "the reviewed content has a digest, the content now has none (was \
                            the agent given the key? see ops::set_digest_key)"
            .into(),
        (None, Some(_)) => "the content now has a digest, the reviewed content had none".into(),
        _ => "content: the digests of the reviewed content and of the content now differ \
              (content without a diff to show: secret, binary, or too large)"
            .into(),
    }
}

fn changes_word(changed: bool) -> &'static str {
    match changed {
        true => "changes something",
        false => "changes nothing",
    }
}

/// Where two diffs first differ: `line N: reviewed `A`, now `B``
/// (`(none)` past a diff's end or for no diff); `None` when equal.
fn first_difference(was: &Option<String>, now: &Option<String>) -> Option<String> {
    if was == now {
        return None;
    }
    let (a, b) = (was.as_deref().unwrap_or(""), now.as_deref().unwrap_or(""));
    let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
    let mut n = 0;
    loop {
        n += 1;
        match (a_lines.next(), b_lines.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => {
                // Same lines: only the presence of a diff or a last newline differs.
                let word = |d: &Option<String>| match d {
                    None => "no diff",
                    Some(d) if d.ends_with('\n') => "a diff ending with a newline",
                    Some(_) => "a diff without a last newline",
                };
                return Some(format!("reviewed {}, now {}", word(was), word(now)));
            }
            (x, y) => {
                let line = |l: Option<&str>| match l {
                    Some(l) => format!("`{}`", shown(l)),
                    None => "(none)".to_owned(),
                };
                return Some(format!("line {n}: reviewed {}, now {}", line(x), line(y)));
            }
        }
    }
}

/// The error of a notification on a report made by [`Report::new`].
fn no_handlers(handler: &str) -> OpError {
    OpError::new(
        "ops::Report",
        handler,
        "notified on a report that keeps no handlers: make it with \
         Report::plan(NAME, mode) instead of Report::new()",
    )
}

impl fmt::Display for Report {
    /// One line per step (`changed` or `ok`, name, summary), each diff
    /// after its step; then the failed step, if one failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, change) in &self.steps {
            let state = if change.changed { "changed" } else { "ok" };
            writeln!(f, "{state:<8} {name}: {}", change.summary)?;
            if let Some(diff) = &change.diff {
                f.write_str(diff)?;
                if !diff.ends_with('\n') {
                    f.write_str("\n")?;
                }
            }
        }
        if let Some((name, error)) = &self.failed {
            writeln!(f, "failed   {name}: {error}")?;
            for skipped in &self.skipped {
                writeln!(f, "skipped  {skipped}: not run, {name} failed")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(changed: bool, summary: &str, diff: Option<&str>) -> Change {
        Change {
            changed,
            summary: summary.into(),
            diff: diff.map(str::to_owned),
            duration: Some(std::time::Duration::from_millis(5)),
            ..Change::default()
        }
    }

    /// The steps after a failure do not run and are kept as skipped, in
    /// order; they travel, and a report without any reads back as before.
    #[test]
    fn steps_after_a_failure_are_skipped_and_named() {
        let mut report = Report::new();
        assert!(report
            .run("conf", || Ok(change(true, "written", None)))
            .is_some());
        assert!(report
            .run("broken", || Err(OpError::new("ops::x", "y", "fails")))
            .is_none());
        let ran = std::cell::Cell::new(false);
        assert!(report
            .run("svc", || {
                ran.set(true);
                Ok(change(false, "running", None))
            })
            .is_none());
        assert!(report
            .run_notifying("late", &[], || Ok(change(true, "x", None)))
            .is_none());
        assert!(!ran.get());
        assert_eq!(report.skipped, ["svc", "late"]);
        assert_eq!(report.steps.len(), 1);
        let text = report.to_string();
        assert!(
            text.ends_with(
                "skipped  svc: not run, broken failed\nskipped  late: not run, broken failed\n"
            ),
            "{text}"
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""skipped":["svc","late"]"#), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
        let clean = Report::new();
        let json = serde_json::to_string(&clean).unwrap();
        assert!(!json.contains("skipped"), "{json}");
        assert!(serde_json::from_str::<Report>(r#"{"steps":[],"failed":null}"#).is_ok());
    }

    /// Each way two plans differ is named with its step; durations are not
    /// compared, and a report read back from JSON matches itself.
    #[test]
    fn differences_name_the_step_and_what_differs() {
        let mut reviewed = Report::new();
        reviewed.add("conf", change(true, "a: content changed", Some("-x\n+y\n")));
        reviewed.add("svc", change(false, "nginx: running", None));
        let json = serde_json::to_string(&reviewed).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        let mut now = back.clone();
        now.steps[0].1.duration = None;
        assert!(now.differences(&reviewed).is_empty());

        now.steps[1].1.changed = true;
        assert_eq!(
            now.differences(&reviewed),
            ["svc: reviewed changes nothing, now changes something (nginx: running)"]
        );
        let mut now = back.clone();
        now.steps[0].1.diff = Some("-x\n+z\n".into());
        assert_eq!(
            now.differences(&reviewed),
            ["conf: diff line 2: reviewed `+y`, now `+z`"]
        );
        now.steps[0].1.diff = Some("-x\n".into());
        assert_eq!(
            now.differences(&reviewed),
            ["conf: diff line 2: reviewed `+y`, now (none)"]
        );
        now.steps[0].1.diff = Some("-x\n+y".into());
        assert_eq!(
            now.differences(&reviewed),
            ["conf: diff reviewed a diff ending with a newline, now a diff without a last newline"]
        );
        let mut now = back.clone();
        now.steps[0].1.summary = "a: changed".into();
        now.steps[0].1.diff = Some("-w\n+y\n".into());
        assert_eq!(
            now.differences(&reviewed),
            [
                "conf: summary: reviewed `a: content changed`, now `a: changed`; \
              diff line 1: reviewed `-x`, now `-w`"
            ]
        );
        let mut now = back.clone();
        now.steps[0].1.summary = "a: created".into();
        now.steps.pop();
        assert_eq!(
            now.differences(&reviewed),
            [
                "conf: summary: reviewed `a: content changed`, now `a: created`",
                "svc: in the reviewed plan, but does not run now"
            ]
        );
        let mut now = back.clone();
        now.steps.pop();
        now.fail(
            "svc".into(),
            OpError::new("ops::service", "nginx", "no such unit"),
        );
        let drift = now.differences(&reviewed);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert!(
            drift[0].ends_with("(step svc failed before it)"),
            "{drift:?}"
        );
        assert!(drift[1].starts_with("svc: fails now: "), "{drift:?}");
        let mut now = back.clone();
        now.steps
            .insert(0, ("extra".into(), change(false, "x", None)));
        assert_eq!(
            now.differences(&reviewed),
            ["step 1: reviewed `conf`, now `extra` (the steps from here on differ)"]
        );
        let mut now = back;
        now.add("late", change(true, "new", None));
        assert_eq!(
            now.differences(&reviewed),
            ["late: runs now, but is not in the reviewed plan"]
        );
        let long = "y".repeat(500);
        now.steps[0].1.summary = long;
        let drift = now.differences(&reviewed);
        assert!(
            drift[0].ends_with("yyy...`") && drift[0].len() < 300,
            "{drift:?}"
        );
    }
}
