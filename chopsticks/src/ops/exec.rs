//! [`command`]: run a program when its guards say the host needs it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::{Change, Mode, OpError, Plan};
use crate::remote;

/// What decides whether a [`Command`] changed the host, besides its guards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangedWhen {
    /// Every run changes the host (a reload, a restart): your choice, said
    /// out loud.
    Always,
    /// Its standard output contains this text.
    StdoutContains(String),
    /// Its standard error contains this text.
    StderrContains(String),
    /// It exits with this status, which then also counts as success and
    /// means changed; an exit with 0 means unchanged. (A program that says
    /// "changed" with 2 and "nothing to do" with 0: `ExitCode(2)`.)
    ExitCode(i32),
    /// It changes nothing: a check that only reads (`sshd -t`, `nginx
    /// -t`, `test -f ...`). It runs in [`Mode::Check`] too, since it only
    /// reads, so both modes report its output; it never counts as changed,
    /// and failing (another status than 0) is still an error. In check
    /// mode it reads the host as it is, before what earlier steps would
    /// change: its output there can differ from apply's.
    Never,
}

/// A program to run, with the guards that make it idempotent and what says
/// it changed something. A command without a guard or a
/// [`changed_when`](Command::changed_when) is refused: its `changed` would
/// be a guess.
///
/// ```
/// use chopsticks::ops::{ChangedWhen, Command};
///
/// let init = Command::new(["/usr/sbin/app", "init"]).creates("/var/lib/app/state");
/// let reload = Command::new(["systemctl", "daemon-reload"]).changed_when(ChangedWhen::Always);
/// let user = Command::new(["useradd", "deploy"]).unless(["id", "deploy"]);
/// let test = Command::new(["sshd", "-t"]).changed_when(ChangedWhen::Never);
/// # let _ = (init, reload, user, test);
/// ```
///
/// In [`Mode::Check`] the command does not run (unless it is
/// [`ChangedWhen::Never`]: it only reads, and runs in both modes); its guards do (a `creates`
/// or `removes` path is looked at, an `unless` or `onlyif` command runs, in
/// the command's directory and environment): a guard command must only
/// look, never change anything, since check mode runs it too. When the guards decide, check mode says
/// exactly what apply does; a command they let run whose `changed` comes
/// from its output is reported as changed in check mode, since only running
/// it can tell.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    creates: Option<PathBuf>,
    removes: Option<PathBuf>,
    unless: Option<Vec<String>>,
    onlyif: Option<Vec<String>>,
    changed_when: Option<ChangedWhen>,
    secret: bool,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Command {
    /// As derived, but a secret command's arguments and environment values
    /// show as `(secret)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &[String]| -> Vec<String> {
            match self.secret {
                true => v
                    .iter()
                    .take(1)
                    .cloned()
                    .chain(["(secret)".into()])
                    .collect(),
                false => v.to_vec(),
            }
        };
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if self.secret { "(secret)" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("Command")
            .field("argv", &hidden(&self.argv))
            .field("env", &env)
            .field("cwd", &self.cwd)
            .field("creates", &self.creates)
            .field("removes", &self.removes)
            .field("unless", &self.unless.as_deref().map(hidden))
            .field("onlyif", &self.onlyif.as_deref().map(hidden))
            .field("changed_when", &self.changed_when)
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// Its exit status (`-1` when a signal ended it).
    pub status: i32,
    /// Its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

impl Command {
    /// Runs `argv[0]` with the rest as arguments (no shell; found on `PATH`).
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Command {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: None,
            creates: None,
            removes: None,
            unless: None,
            onlyif: None,
            changed_when: None,
            secret: false,
            timeout: None,
        }
    }

    /// Sets an environment variable for it.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs it in `dir`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Runs it only while `path` does not exist (it creates it).
    pub fn creates(mut self, path: impl Into<PathBuf>) -> Command {
        self.creates = Some(path.into());
        self
    }

    /// Runs it only while `path` exists (it removes it).
    pub fn removes(mut self, path: impl Into<PathBuf>) -> Command {
        self.removes = Some(path.into());
        self
    }

    /// Runs it only when `argv` fails (a read-only test, run in check mode too).
    pub fn unless<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Command {
        self.unless = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// Runs it only when `argv` succeeds (a read-only test, run in check mode too).
    pub fn onlyif<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Command {
        self.onlyif = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// What says a run changed the host; without it, a run the guards let
    /// through counts as a change.
    pub fn changed_when(mut self, when: ChangedWhen) -> Command {
        self.changed_when = Some(when);
        self
    }

    /// Its arguments (a password, a token) are secret: summaries and errors
    /// name only the program, and errors do not quote what it printed.
    /// (Its output is still in [`Change::output`], for you to read.)
    pub fn secret(mut self) -> Command {
        self.secret = true;
        self
    }

    /// Kills it (and fails) when it runs longer than `limit`. Guard
    /// commands get the same limit.
    pub fn timeout(mut self, limit: Duration) -> Command {
        self.timeout = Some(limit);
        self
    }

    fn shown(&self) -> String {
        match (self.secret, self.argv.first()) {
            (true, Some(program)) => format!("`{program} (secret arguments)`"),
            _ => format!("`{}`", self.argv.join(" ")),
        }
    }

    /// How a guard command is named: hidden like the command when secret.
    fn shown_guard(&self, kind: &str, argv: &[String]) -> String {
        match self.secret {
            true => format!("its {kind} guard"),
            false => format!("`{}`", argv.join(" ")),
        }
    }

    /// `argv` (the command or a guard) to run as this command runs.
    fn runner<'a>(&'a self, argv: &'a [String], shown: &'a str) -> Program<'a> {
        Program {
            argv,
            env: &self.env,
            cwd: self.cwd.as_ref(),
            shown,
            timeout: self.timeout,
        }
    }

    /// A guard's path, relative ones under the command's directory.
    fn guard_path(&self, path: &std::path::Path) -> PathBuf {
        match &self.cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// Why the guards skip it, if they do. They run as the command would
    /// (its directory, its environment), in check mode too.
    fn skipped(&self) -> Result<Option<String>, OpError> {
        if let Some(path) = &self.creates {
            if self.guard_path(path).exists() {
                return Ok(Some(format!("{} exists", path.display())));
            }
        }
        if let Some(path) = &self.removes {
            if !self.guard_path(path).exists() {
                return Ok(Some(format!("{} does not exist", path.display())));
            }
        }
        if let Some(test) = &self.unless {
            if self.runner(test, &self.shown()).output(OP)?.status == 0 {
                let guard = self.shown_guard("unless", test);
                return Ok(Some(format!("{guard} succeeds")));
            }
        }
        if let Some(test) = &self.onlyif {
            if self.runner(test, &self.shown()).output(OP)?.status != 0 {
                let guard = self.shown_guard("onlyif", test);
                return Ok(Some(format!("{guard} fails")));
            }
        }
        Ok(None)
    }

    /// What running it would do: skipped by its guards, or run (its apply
    /// step runs it, and fails when it fails).
    ///
    /// # Errors
    /// An empty argv, no guard and no `changed_when`, or a guard command
    /// that cannot be started.
    pub fn plan(self) -> Result<Plan, OpError> {
        self.plan_into(None)
    }

    /// [`plan`](Command::plan), keeping the run's output in `ran`.
    fn plan_into(self, ran: Option<Ran>) -> Result<Plan, OpError> {
        let shown = self.shown();
        if self.argv.is_empty() {
            return Err(OpError::new(
                OP,
                "``",
                "an empty command: give the program to run",
            ));
        }
        let guarded = self.creates.is_some()
            || self.removes.is_some()
            || self.unless.is_some()
            || self.onlyif.is_some();
        if !guarded && self.changed_when.is_none() {
            return Err(OpError::new(
                OP,
                &shown,
                "say how its change shows: a guard (creates, removes, unless, onlyif) or \
                 changed_when (ChangedWhen::Always for a command that always changes the host)",
            ));
        }
        if let Some(why) = self.skipped()? {
            return Ok(Plan::unchanged(format!("{shown} skipped: {why}")));
        }
        if self.changed_when == Some(ChangedWhen::Never) {
            // It only reads: it runs now, in either mode, and changes nothing.
            let out = self.runner(&self.argv, &shown).output(OP)?;
            let done = finished(&shown, &self, out)?;
            if let Some(ran) = ran {
                *ran.borrow_mut() = Some(done);
            }
            return Ok(Plan::unchanged(format!("ran {shown}")));
        }
        let summary = format!("run {shown}");
        // What the summary may not show (secret arguments, the
        // environment's values) is compared by its digest.
        let digest = serde_json::to_vec(&(&self.argv, &self.env, &self.cwd))
            .ok()
            .and_then(|what| super::digest::of(&what));
        let mut plan = Plan::change(summary, None, move |w| {
            let out = w.exec(self.runner(&self.argv, &shown), OP)?;
            let done = finished(&shown, &self, out)?;
            if let Some(ran) = ran {
                *ran.borrow_mut() = Some(done);
            }
            Ok(())
        });
        plan.change.digest = digest;
        Ok(plan)
    }
}

/// Checks how a run ended: its output, and whether it changed the host.
fn finished(
    shown: &str,
    spec: &Command,
    out: CommandOutput,
) -> Result<(CommandOutput, bool), OpError> {
    let when = spec.changed_when.as_ref();
    let changed_code = match when {
        Some(ChangedWhen::ExitCode(code)) => Some(*code),
        _ => None,
    };
    if out.status != 0 && Some(out.status) != changed_code {
        let said = match spec.secret {
            true => "its output is not shown, since the command is secret".to_owned(),
            false => super::tools::tail(&out, 5),
        };
        return Err(OpError::new(
            OP,
            shown,
            format!("exited with status {}: {said}", out.status),
        ));
    }
    let changed = match when {
        None | Some(ChangedWhen::Always) => true,
        Some(ChangedWhen::Never) => false,
        Some(ChangedWhen::StdoutContains(text)) => out.stdout.contains(text.as_str()),
        Some(ChangedWhen::StderrContains(text)) => out.stderr.contains(text.as_str()),
        Some(ChangedWhen::ExitCode(code)) => out.status == *code,
    };
    Ok((out, changed))
}

const OP: &str = "ops::command";

/// Where a run leaves its output and whether it changed the host.
type Ran = Rc<RefCell<Option<(CommandOutput, bool)>>>;

/// Runs a [`Command`] unless its guards skip it; in [`Mode::Check`] only
/// the guards run. The change's [`output`](Change::output) has what it
/// printed.
///
/// # Errors
/// [`OpError`] when it cannot start, or exits with another status than 0
/// (or its `ChangedWhen::ExitCode`), quoting the end of its stderr.
#[remote]
pub fn command(spec: Command, mode: Mode) -> Result<Change, OpError> {
    let shown = spec.shown();
    let ran: Ran = Rc::default();
    let mut change = spec.plan_into(Some(Rc::clone(&ran)))?.run(mode)?;
    if let Some((out, changed)) = ran.borrow_mut().take() {
        change.changed = changed;
        change.summary = format!(
            "ran {shown}: {}",
            if changed { "changed" } else { "unchanged" }
        );
        change.output = Some(out);
    }
    Ok(change)
}
