//! [`command`]: run a program when its guards say the host needs it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Stdio;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

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
/// # let _ = (init, reload, user);
/// ```
///
/// In [`Mode::Check`] the command does not run; its guards do (a `creates`
/// or `removes` path is looked at, an `unless` or `onlyif` command runs, in
/// the command's directory and environment): a guard command must only
/// look, never change anything, since check mode runs it too. When the guards decide, check mode says
/// exactly what apply does; a command they let run whose `changed` comes
/// from its output is reported as changed in check mode, since only running
/// it can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    creates: Option<PathBuf>,
    removes: Option<PathBuf>,
    unless: Option<Vec<String>>,
    onlyif: Option<Vec<String>>,
    changed_when: Option<ChangedWhen>,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
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

    fn shown(&self) -> String {
        format!("`{}`", self.argv.join(" "))
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
        let cwd = self.cwd.as_ref();
        if let Some(test) = &self.unless {
            if run(test, &self.env, cwd, &self.shown())?.status == 0 {
                return Ok(Some(format!("`{}` succeeds", test.join(" "))));
            }
        }
        if let Some(test) = &self.onlyif {
            if run(test, &self.env, cwd, &self.shown())?.status != 0 {
                return Ok(Some(format!("`{}` fails", test.join(" "))));
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
        let summary = format!("run {shown}");
        let (argv, env, cwd, when) = (self.argv, self.env, self.cwd, self.changed_when);
        Ok(Plan::change(summary, None, move |w| {
            let out = w.run(&argv, &env, cwd.as_ref())?;
            let done = finished(&shown, when.as_ref(), out)?;
            if let Some(ran) = ran {
                *ran.borrow_mut() = Some(done);
            }
            Ok(())
        }))
    }
}

/// Checks how a run ended: its output, and whether it changed the host.
fn finished(
    shown: &str,
    when: Option<&ChangedWhen>,
    out: Output,
) -> Result<(Output, bool), OpError> {
    let changed_code = match when {
        Some(ChangedWhen::ExitCode(code)) => Some(*code),
        _ => None,
    };
    if out.status != 0 && Some(out.status) != changed_code {
        let tail: Vec<&str> = out.stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(OpError::new(
            OP,
            shown,
            format!("exited with status {}: {}", out.status, tail.join(" / ")),
        ));
    }
    let changed = match when {
        None | Some(ChangedWhen::Always) => true,
        Some(ChangedWhen::StdoutContains(text)) => out.stdout.contains(text.as_str()),
        Some(ChangedWhen::StderrContains(text)) => out.stderr.contains(text.as_str()),
        Some(ChangedWhen::ExitCode(code)) => out.status == *code,
    };
    Ok((out, changed))
}

const OP: &str = "ops::command";

/// Where a run leaves its output and whether it changed the host.
type Ran = Rc<RefCell<Option<(Output, bool)>>>;

/// Runs `argv` and collects its output.
pub(super) fn run(
    argv: &[String],
    env: &[(String, String)],
    cwd: Option<&PathBuf>,
    shown: &str,
) -> Result<Output, OpError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(OpError::new(OP, shown, "an empty guard command"));
    };
    let mut child = std::process::Command::new(program);
    child
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    if let Some(dir) = cwd {
        child.current_dir(dir);
    }
    let out = child.output().map_err(|e| {
        OpError::new(
            OP,
            shown,
            format!("cannot start `{program}`: {}", crate::files::describe(&e)),
        )
    })?;
    Ok(Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

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
