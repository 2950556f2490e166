//! [`Printer`]: what a run shows, host by host and step by step, and how
//! it ends (recap, retry file, exit code). The one place that draws: the
//! steps and the library never print a line of the run's output.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chopsticks::ops::{Change, Changes, Recap, Report};
use chopsticks::{Error, Group, GroupResult, Transfer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::journal::{Journal, Run, Step};
use crate::ExitCode;

/// What a step of operations gives per host, for [`Printer::changes`]: a
/// [`Change`], a [`Report`] of several, or a [`Transfer`] (a put or a
/// fetch, changed when it wrote something).
pub trait StepChanges: Changes + Serialize {
    /// Its lines: each operation's state (`ok`, `changed`, `failed`),
    /// name and summary, and its diff.
    fn lines(&self, step: &str) -> Vec<(&'static str, String, Option<String>)>;

    /// Its steps as the run journal, `--junit` and `--profile` keep them:
    /// one per line of [`lines`](StepChanges::lines), with its duration on
    /// the host when measured. By default made of the lines (`NAME:
    /// SUMMARY`), without durations.
    fn journal(&self, host: &str, step: &str) -> Vec<Step> {
        self.lines(step)
            .into_iter()
            .map(|(state, text, diff)| {
                let (name, summary) = text.split_once(": ").unwrap_or((step, &text));
                Step::new(host, name, state, summary).diff(diff.as_deref())
            })
            .collect()
    }

    /// Whether a saved plan (`--save-plan`, `--apply-plan`) keeps its
    /// steps: operations' yes; a transfer's no, as it is no operation
    /// with a check mode (a tool sends files in apply mode only, so its
    /// check has no such step to compare).
    fn planned(&self) -> bool {
        true
    }
}

/// A change as a journal step.
fn journal_step(host: &str, step: &str, change: &Change) -> Step {
    let state = if change.changed { "changed" } else { "ok" };
    Step::new(host, step, state, &change.summary)
        .diff(change.diff.as_deref())
        .duration(change.duration)
        .digest(change.digest.as_deref())
}

impl StepChanges for Change {
    fn lines(&self, step: &str) -> Vec<(&'static str, String, Option<String>)> {
        let state = if self.changed { "changed" } else { "ok" };
        vec![(
            state,
            format!("{step}: {}", self.summary),
            self.diff.clone(),
        )]
    }

    fn journal(&self, host: &str, step: &str) -> Vec<Step> {
        vec![journal_step(host, step, self)]
    }
}

impl StepChanges for Report {
    fn lines(&self, step: &str) -> Vec<(&'static str, String, Option<String>)> {
        let mut lines: Vec<_> = self
            .steps
            .iter()
            .map(|(name, c)| {
                let state = if c.changed { "changed" } else { "ok" };
                (
                    state,
                    format!("{step}/{name}: {}", c.summary),
                    c.diff.clone(),
                )
            })
            .collect();
        if let Some((name, error)) = &self.failed {
            lines.push(("failed", format!("{step}/{name}: {error}"), None));
            for skipped in &self.skipped {
                let why = format!("{step}/{skipped}: not run, {step}/{name} failed");
                lines.push(("skipped", why, None));
            }
        }
        lines
    }

    fn journal(&self, host: &str, step: &str) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .steps
            .iter()
            .map(|(name, c)| journal_step(host, &format!("{step}/{name}"), c))
            .collect();
        if let Some((name, error)) = &self.failed {
            let name = format!("{step}/{name}");
            steps.push(Step::new(host, &name, "failed", &error.to_string()));
            for skipped in &self.skipped {
                let why = format!("not run, {name} failed");
                steps.push(Step::new(
                    host,
                    &format!("{step}/{skipped}"),
                    "skipped",
                    &why,
                ));
            }
        }
        steps
    }
}

/// A transfer's line: where, and what was sent. (Not its content's hash:
/// the journal keeps summaries, and a hash of short secret content, a key
/// fetched, can be guessed by trying.)
fn transfer_summary(t: &Transfer) -> String {
    let remote = t.remote.to_string_lossy();
    let place = match t.local.as_os_str().is_empty() {
        true => remote.into_owned(),
        false => format!("{remote} (here {})", t.local.to_string_lossy()),
    };
    let what = match (t.tree, t.changed) {
        (true, true) => format!(
            "{} files sent, {} up to date, {} bytes",
            t.files_sent, t.files_skipped, t.bytes
        ),
        (true, false) => format!("{} files up to date", t.files_skipped),
        (false, true) => format!("{} bytes sent", t.bytes),
        (false, false) => "up to date".to_owned(),
    };
    format!("{place}: {what}")
}

impl StepChanges for Transfer {
    fn lines(&self, step: &str) -> Vec<(&'static str, String, Option<String>)> {
        let state = if self.changed { "changed" } else { "ok" };
        vec![(state, format!("{step}: {}", transfer_summary(self)), None)]
    }

    fn planned(&self) -> bool {
        false
    }
}

/// The output of a run: a line per host and step (or one JSON object with
/// `--json`), then a recap; the failed hosts go to a retry file, and the
/// exit code says how it went. Colours follow [`chopsticks::color`] (the
/// kit's `--color`, `NO_COLOR`, whether stdout is a terminal).
#[derive(Debug)]
pub struct Printer {
    json: bool,
    quiet: bool,
    diff: bool,
    colour: bool,
    recap: Recap,
    failed: BTreeSet<String>,
    batch: Vec<String>,
    width: usize,
    retry_file: Option<PathBuf>,
    /// The run as the journal, `--junit` and `--profile` see it.
    run: Run,
    journal: Option<Journal>,
    junit: Option<PathBuf>,
    profile: bool,
    /// Whether the run's record was written ([`Drop`] writes it if not).
    recorded: bool,
    /// The steps of operations and the failures, as a saved plan keeps
    /// them ([`crate::plan`]), when `keep_plan`.
    planned: Vec<Step>,
    keep_plan: bool,
    /// Prints nothing and records nothing: `--apply-plan`'s check pass.
    silent: bool,
}

impl Printer {
    pub(crate) fn new(json: bool, quiet: bool, diff: bool, retry_file: Option<PathBuf>) -> Printer {
        let colour = chopsticks::color().enabled(std::io::stdout().is_terminal());
        Printer {
            json,
            quiet,
            diff,
            colour,
            recap: Recap::new(),
            failed: BTreeSet::new(),
            batch: Vec::new(),
            width: 0,
            retry_file: retry_file.or_else(default_retry_file),
            run: Run::new(
                &tool_name().unwrap_or_default(),
                std::env::args_os()
                    .skip(1)
                    .map(|a| a.to_string_lossy().into_owned()),
            ),
            journal: None,
            junit: None,
            profile: false,
            recorded: false,
            planned: Vec::new(),
            keep_plan: false,
            silent: false,
        }
    }

    /// A printer that prints nothing and records nothing, and only keeps
    /// the steps of operations: `--apply-plan`'s check pass.
    pub(crate) fn silent() -> Printer {
        let mut printer = Printer::new(false, true, false, None);
        printer.silent = true;
        printer.keep_plan = true;
        printer.recorded = true;
        printer.retry_file = None;
        printer
    }

    /// Keeps the steps of operations and the failures for a plan
    /// (`--save-plan`, `--apply-plan`).
    pub(crate) fn keep_plan(mut self, keep: bool) -> Printer {
        self.keep_plan = keep;
        self
    }

    /// The steps of operations so far and the failures, in order (kept
    /// only with [`keep_plan`](Printer::keep_plan)).
    pub(crate) fn planned(&self) -> &[Step] {
        &self.planned
    }

    /// The run's record so far (its start, its masked arguments).
    pub(crate) fn run_record(&self) -> &Run {
        &self.run
    }

    /// Whether `host` failed in this run so far.
    pub(crate) fn host_failed(&self, host: &str) -> bool {
        self.failed.contains(host)
    }

    /// Refuses `host` at `step` (`(reviewed plan)`) for `message`: a
    /// failure of the host (`unreachable`: it could not be reached), in
    /// the output, the recap and the record.
    pub(crate) fn refuse(&mut self, host: &str, step: &str, message: &str, unreachable: bool) {
        self.failed.insert(host.to_owned());
        self.width = self.width.max(host.len());
        let line = match self.recap.hosts.iter_mut().find(|h| h.host == host) {
            Some(line) => line,
            None => {
                self.recap.hosts.push(chopsticks::ops::HostRecap {
                    host: host.to_owned(),
                    ..Default::default()
                });
                self.recap.hosts.last_mut().expect("just pushed")
            }
        };
        let status = match unreachable {
            true => {
                line.unreachable = true;
                "unreachable"
            }
            false => {
                line.failed += 1;
                "failed"
            }
        };
        let step_record = Step::new(host, step, status, message);
        if self.keep_plan {
            self.planned.push(step_record.clone());
        }
        self.run.steps.push(step_record);
        if self.json {
            let object = json!({"host": host, "step": step, "status": status, "error": message});
            self.emit(object.to_string());
        } else {
            let width = self.width;
            let message = chopsticks::printable(message).into_owned();
            self.emit(format!(
                "{} {host:<width$}  {step}: {message}",
                self.paint(status)
            ));
        }
    }

    /// Where the run's record goes at its end (`None`: nowhere), where its
    /// JUnit XML goes, whether the slowest steps are shown after the recap.
    pub(crate) fn record(
        mut self,
        journal: Option<Journal>,
        junit: Option<PathBuf>,
        profile: bool,
    ) -> Printer {
        self.journal = journal;
        self.junit = junit;
        self.profile = profile;
        self
    }

    /// Records the run as a check run (`--check`): what its steps report
    /// as changed only would have changed.
    pub(crate) fn check(mut self, check: bool) -> Printer {
        self.run.check = check;
        self
    }

    fn paint(&self, state: &str) -> String {
        let code = match state {
            "ok" => "32",
            "changed" => "33",
            "skipped" => "36",
            _ => "31",
        };
        match self.colour {
            true => format!("\x1b[{code}m{state:<11}\x1b[0m"),
            false => format!("{state:<11}"),
        }
    }

    /// Pads host names to the widest of a step's.
    fn widen<T>(&mut self, results: &GroupResult<T>) {
        let widest = results.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
        self.width = self.width.max(widest);
    }

    fn emit(&self, line: String) {
        if self.silent {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }

    /// A failed host: counted, and its line or object.
    fn failure(&mut self, host: &str, step: &str, error: &Error) {
        self.failed.insert(host.to_owned());
        let state = match error {
            Error::Interrupted { .. } => "interrupted",
            e if e.is_unreachable() => "unreachable",
            _ => "failed",
        };
        let record = Step::new(host, step, state, &error.to_string());
        if self.keep_plan {
            self.planned.push(record.clone());
        }
        self.run.steps.push(record);
        if self.json {
            let object =
                json!({"host": host, "step": step, "status": state, "error": error.to_string()});
            self.emit(object.to_string());
        } else {
            // What the host said reaches a terminal: no control characters.
            let width = self.width;
            let error = chopsticks::printable(&error.to_string()).into_owned();
            self.emit(format!(
                "{} {host:<width$}  {step}: {error}",
                self.paint(state)
            ));
        }
    }

    /// Reports a step whose hosts return plain values, of any type that
    /// serializes (a fact, your own function's, a fetch's
    /// [`Transfer`]s, or any of these made into what is to be shown with
    /// [`GroupResult::map`]): `ok` and the value, or
    /// `failed`/`unreachable` and the error. The journal keeps only
    /// `ok` and the value's size, as a value may be a secret (a key read
    /// back, a token); [`step_journaled`](Printer::step_journaled) keeps
    /// the value too.
    pub fn step<T: Serialize>(&mut self, step: &str, results: &GroupResult<T>) {
        self.value_step(step, results, false);
    }

    /// [`step`](Printer::step), and the journal keeps the values (cut at
    /// [`MAX_SUMMARY`](crate::journal::MAX_SUMMARY) bytes): for values
    /// that are no secret, such as facts.
    pub fn step_journaled<T: Serialize>(&mut self, step: &str, results: &GroupResult<T>) {
        self.value_step(step, results, true);
    }

    fn value_step<T: Serialize>(&mut self, step: &str, results: &GroupResult<T>, journaled: bool) {
        self.widen(results);
        for (host, result) in results.iter() {
            match result {
                Ok(value) => {
                    let value = serde_json::to_value(value).unwrap_or(Value::Null);
                    let summary = match &value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let kept = match journaled {
                        true => summary,
                        false => format!("ok ({} bytes, not journaled)", summary.len()),
                    };
                    self.run.steps.push(Step::new(host, step, "ok", &kept));
                    if self.json {
                        let object =
                            json!({"host": host, "step": step, "status": "ok", "value": value});
                        self.emit(object.to_string());
                    } else if !self.quiet {
                        let shown = match &value {
                            Value::String(s) => chopsticks::printable(s).into_owned(),
                            other => other.to_string(),
                        };
                        let width = self.width;
                        self.emit(format!(
                            "{} {host:<width$}  {step}: {shown}",
                            self.paint("ok")
                        ));
                    }
                }
                Err(e) => self.failure(host, step, e),
            }
        }
        self.recap.add_values(results);
    }

    /// Reports a step of operations: each host's changes (`ok`, `changed`,
    /// `failed`, and `skipped` for a [`Report`]'s steps after its failure),
    /// their diffs with `--diff`; a put's or a fetch's [`Transfer`]s are
    /// such a step too (`changed` where they wrote something).
    pub fn changes<T: StepChanges>(&mut self, step: &str, results: &GroupResult<T>) {
        self.widen(results);
        for (host, result) in results.iter() {
            let Ok(value) = result else {
                if let Err(e) = result {
                    self.failure(host, step, e);
                }
                continue;
            };
            let (_, _, failed) = value.counts();
            if failed > 0 {
                self.failed.insert(host.to_owned());
            }
            let steps = value.journal(host, step);
            if self.keep_plan && value.planned() {
                self.planned.extend(steps.iter().cloned());
            }
            self.run.steps.extend(steps);
            if self.json {
                let (_, changed, _) = value.counts();
                let status = match (failed, changed) {
                    (1.., _) => "failed",
                    (0, 1..) => "changed",
                    _ => "ok",
                };
                let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
                durations_as_ms(&mut value);
                let object = json!({"host": host, "step": step, "status": status, "value": value});
                self.emit(object.to_string());
                continue;
            }
            for (state, text, diff) in value.lines(step) {
                if self.quiet && state != "failed" {
                    continue;
                }
                let width = self.width;
                let text = chopsticks::printable(&text).into_owned();
                self.emit(format!("{} {host:<width$}  {text}", self.paint(state)));
                if let (true, Some(diff)) = (self.diff, diff) {
                    for line in diff.lines() {
                        self.emit(format!("    {}", chopsticks::printable(line)));
                    }
                }
            }
        }
        self.recap.add(results);
    }

    /// Reports a batch's connect pass, made before its first step: each
    /// host that could not be reached once (`unreachable` at step
    /// [`CONNECT`]), in the output, the recap, the retry file and the
    /// record; the steps then run without it. Every host of the batch
    /// gets its recap line, in the batch's order.
    /// Reports the failures of a step the kit itself runs (`step`), and
    /// nothing of its successes.
    pub(crate) fn failures<T>(&mut self, step: &str, results: &GroupResult<T>) {
        self.widen(results);
        for (host, e) in results.failures() {
            self.failure(host, step, e);
        }
    }

    pub(crate) fn connected(&mut self, results: &GroupResult<()>) {
        self.widen(results);
        for (host, e) in results.failures() {
            self.failure(host, CONNECT, e);
        }
        self.recap.add_connected(results);
    }

    pub(crate) fn begin_batch(&mut self, batch: &Group) {
        self.batch = batch.hosts().map(str::to_owned).collect();
    }

    /// The percentage of the current batch's hosts that failed.
    pub(crate) fn batch_failed_percent(&self) -> f64 {
        if self.batch.is_empty() {
            return 0.0;
        }
        let failed = self
            .batch
            .iter()
            .filter(|h| self.failed.contains(*h))
            .count();
        100.0 * failed as f64 / self.batch.len() as f64
    }

    /// The run was interrupted before the batches after `batch` (`rest`
    /// their hosts) started.
    pub(crate) fn interrupted(&mut self, batch: usize, rest: &[&str]) {
        if rest.is_empty() {
            return;
        }
        self.failed.extend(rest.iter().map(|h| (*h).to_owned()));
        self.not_run(rest, &format!("interrupted after batch {batch}"));
        let message = format!(
            "interrupted after batch {batch}; not run: {}",
            rest.join(", ")
        );
        if self.json {
            self.emit(json!({"interrupted": message, "not_run": rest}).to_string());
        } else {
            eprintln!("{message}");
        }
    }

    pub(crate) fn stopped(&mut self, batch: usize, failed: f64, limit: u8, rest: &[&str]) {
        let message = format!(
            "stopped after batch {batch}: {failed:.0}% of its hosts failed, more than \
             --max-fail-percentage {limit}; not run: {}",
            rest.join(", ")
        );
        self.not_run(rest, &format!("stopped after batch {batch}"));
        if self.json {
            self.emit(json!({"stopped": message, "not_run": rest}).to_string());
        } else {
            eprintln!("{message}");
        }
    }

    /// `--apply-plan` refused `share`% of the planned hosts, more than
    /// `--max-fail-percentage` `limit`: the hosts that matched (`rest`)
    /// are not applied either.
    pub(crate) fn stopped_before_apply(&mut self, share: f64, limit: u8, rest: &[&str]) {
        let message = format!(
            "stopped before the apply: {share:.0}% of the planned hosts were refused, more \
             than --max-fail-percentage {limit}; not applied: {}",
            rest.join(", ")
        );
        self.not_run(rest, "stopped before the apply");
        if self.json {
            self.emit(json!({"stopped": message, "not_run": rest}).to_string());
        } else {
            eprintln!("{message}");
        }
    }

    /// The hosts `rest` did not run: skipped steps for the record.
    fn not_run(&mut self, rest: &[&str], why: &str) {
        for host in rest {
            self.run
                .steps
                .push(Step::new(host, "(not run)", "skipped", why));
        }
    }

    /// The recap so far, as data.
    pub fn recap(&self) -> &Recap {
        &self.recap
    }

    /// How the run went so far: [`ExitCode::Unreachable`] when a host
    /// could not be reached, [`ExitCode::Failed`] when something failed,
    /// else [`ExitCode::Ok`].
    pub fn exit_code(&self) -> ExitCode {
        match ExitCode::of(&self.recap) {
            ExitCode::Ok if chopsticks::interrupted() => ExitCode::Interrupted,
            ExitCode::Ok if !self.failed.is_empty() => ExitCode::Failed,
            code => code,
        }
    }

    /// The recap as text, one line per host, coloured when `colour`.
    fn recap_text(&self) -> String {
        let width = self
            .recap
            .hosts
            .iter()
            .map(|h| h.host.len())
            .max()
            .unwrap_or(0);
        let paint = |code: &str, text: String, on: bool| match self.colour && on {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text,
        };
        let lines: Vec<String> = self
            .recap
            .hosts
            .iter()
            .map(|h| {
                let name = format!("{:<width$}", h.host);
                let name = match (h.unreachable || h.failed > 0, h.changed > 0) {
                    (true, _) => paint("31", name, true),
                    (false, true) => paint("33", name, true),
                    (false, false) => paint("32", name, true),
                };
                format!(
                    "{name}  {}  {}  {}  {}  {}{}",
                    paint("32", format!("ok={}", h.ok), h.ok > 0),
                    paint("33", format!("changed={}", h.changed), h.changed > 0),
                    paint(
                        "31",
                        format!("unreachable={}", u8::from(h.unreachable)),
                        h.unreachable
                    ),
                    paint("31", format!("failed={}", h.failed), h.failed > 0),
                    paint("36", format!("skipped={}", h.skipped), h.skipped > 0),
                    match h.interrupted {
                        true => paint("31", "  (interrupted)".into(), true),
                        false => String::new(),
                    },
                )
            })
            .collect();
        lines.join("\n")
    }

    /// The slowest steps measured on the hosts (`--profile`), slowest
    /// first: Ansible's `profile_tasks`.
    fn profile_text(&self) -> String {
        let mut timed: Vec<&Step> = self.run.steps.iter().filter(|s| s.ms.is_some()).collect();
        timed.sort_by(|a, b| b.ms.unwrap_or(0.0).total_cmp(&a.ms.unwrap_or(0.0)));
        timed.truncate(PROFILE_STEPS);
        if self.json {
            let steps: Vec<Value> = timed
                .iter()
                .map(|s| json!({"host": s.host, "step": s.step, "ms": s.ms}))
                .collect();
            return json!({ "profile": steps }).to_string();
        }
        let width = timed.iter().map(|s| s.host.len()).max().unwrap_or(0);
        let mut text = String::from("\nslowest steps (on the hosts):");
        if timed.is_empty() {
            text.push_str(" none measured");
        }
        for s in timed {
            let took = Duration::from_secs_f64(s.ms.unwrap_or(0.0) / 1e3);
            let step = chopsticks::printable(&s.step).into_owned();
            text.push_str(&format!(
                "\n  {:>9.3}s  {:<width$}  {step}",
                took.as_secs_f64(),
                s.host
            ));
        }
        text
    }

    /// Appends the run's record to the journal, writes `--junit`'s file;
    /// what cannot be written is said on stderr.
    fn record_run(&mut self, code: i32) {
        self.recorded = true;
        self.run.end(code);
        if let Some(journal) = &self.journal {
            if let Err(e) = journal.append(&self.run) {
                eprintln!(
                    "cannot write the run journal {}: {e}",
                    journal.path().display()
                );
            }
        }
        crate::interrupt::recorded();
        if let Some(path) = &self.junit {
            if let Err(e) = write_private(path, crate::junit::document(&self.run).as_bytes()) {
                eprintln!("cannot write the JUnit XML to {}: {e}", path.display());
            }
        }
    }

    /// Prints the recap (not with `--json`) and with `--profile` the
    /// slowest steps, writes the failed hosts to the retry file, the run's
    /// record to the journal, `--junit`'s XML, and returns the exit code.
    pub fn finish(mut self) -> ExitCode {
        if !self.json {
            self.emit(format!("\n{}", self.recap_text()));
        }
        if self.profile {
            self.emit(self.profile_text());
        }
        if let (false, Some(path)) = (self.failed.is_empty(), &self.retry_file) {
            let hosts: String = self.failed.iter().map(|h| format!("{h}\n")).collect();
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(path, hosts));
            match written {
                Ok(()) => eprintln!(
                    "failed hosts written to {0}: rerun them with --limit @{0}",
                    path.display()
                ),
                Err(e) => eprintln!("cannot write the failed hosts to {}: {e}", path.display()),
            }
        }
        let code = self.exit_code();
        self.record_run(code.code());
        code
    }
}

/// A printer dropped before [`finish`](Printer::finish), as when the
/// tool's steps panic, still records its run: as aborted (exit 101 on a
/// panic, as Rust's), with the steps it saw.
impl Drop for Printer {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let (code, why) = match std::thread::panicking() {
            true => (101, "aborted: the tool panicked before its recap"),
            false => (1, "aborted: the run ended without its recap"),
        };
        self.run.note = Some(why.to_owned());
        self.record_run(code);
    }
}

/// The step name of a host's connection, made before a run's first step.
pub(crate) const CONNECT: &str = "(connect)";

/// How many steps `--profile` shows.
const PROFILE_STEPS: usize = 20;

/// The tool's name: its program's.
pub(crate) fn tool_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.file_stem()?.to_string_lossy().into_owned())
}

/// `$XDG_STATE_HOME/chopsticks/TOOL.retry`, or under `~/.local/state`.
fn default_retry_file() -> Option<PathBuf> {
    let tool = tool_name()?;
    let state = crate::journal::file::state_home()?;
    Some(state.join("chopsticks").join(format!("{tool}.retry")))
}

/// `value` with each change's `"duration": {"secs", "nanos"}` (serde's
/// form of a `Duration`) written `"ms": 1234.567`, as the journal keeps it.
fn durations_as_ms(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let serde_duration =
                |d: &Value| d.is_null() || (d.get("secs").is_some() && d.get("nanos").is_some());
            if let Some(duration) = object
                .get("duration")
                .filter(|d| serde_duration(d))
                .cloned()
            {
                object.remove("duration");
                let ms = match (duration.get("secs"), duration.get("nanos")) {
                    (Some(s), Some(n)) => {
                        let ms = s.as_f64().unwrap_or(0.0) * 1e3 + n.as_f64().unwrap_or(0.0) / 1e6;
                        json!((ms * 1e3).round() / 1e3)
                    }
                    _ => Value::Null,
                };
                object.insert("ms".to_owned(), ms);
            }
            object.values_mut().for_each(durations_as_ms);
        }
        Value::Array(items) => items.iter_mut().for_each(durations_as_ms),
        _ => {}
    }
}

/// Writes `data` to `path`, the file mode 0600 (it holds the run's
/// summaries and errors, as the journal does).
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic in the tool's steps still records the run, as aborted.
    #[test]
    fn a_panicking_run_is_recorded_as_aborted() {
        let dir = std::env::temp_dir().join(format!("cs-printer-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::new(&dir);
        let printer = Printer::new(false, true, false, Some(dir.join("retry"))).record(
            Some(journal.clone()),
            None,
            false,
        );
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _out = printer;
            panic!("a bug in the steps");
        }));
        assert!(panicked.is_err());
        let runs = journal.runs(None, 5).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].exit, 101);
        assert_eq!(
            runs[0].note.as_deref(),
            Some("aborted: the tool panicked before its recap")
        );
        let text = crate::history::show(&journal, None, false).unwrap();
        assert!(
            text.contains("exit 101")
                && text.contains("  (aborted: the tool panicked before its recap)\n"),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// `--json` shows a change's duration in milliseconds.
    #[test]
    fn json_durations_are_milliseconds() {
        let change = Change {
            changed: true,
            duration: Some(Duration::from_micros(1_234_567)),
            ..Change::default()
        };
        let mut value = json!({ "changes": [serde_json::to_value(change).unwrap()] });
        durations_as_ms(&mut value);
        assert_eq!(value["changes"][0]["ms"], json!(1234.567));
        assert!(value["changes"][0].get("duration").is_none());
    }
}
