//! [`cron`]: a scheduled job, in a file of its own in `/etc/cron.d` or in
//! a user's crontab, as Ansible's `cron` module keeps one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod schedule;
mod tab;

use super::process::Program;
use super::text::{bounded_text, read_bounded_text};
use super::write::MAX_INPUT;
use super::{diff, tools, Change, Mode, OpError, Owner, Plan, Writer};
use crate::files::{self, describe, Kind};
use crate::remote;

const OP: &str = "ops::cron";

/// Where the jobs of files of their own go.
const CRON_D: &str = "/etc/cron.d";

/// The longest job name, in bytes.
const MAX_NAME: usize = 64;

/// The longest command, and the longest environment line (`KEY=value`),
/// in bytes: vixie cron (Debian's) keeps 1000 bytes with the closing NUL,
/// and cuts a longer one short without a word.
const MAX_COMMAND: usize = 999;

/// The most environment lines one job has.
const MAX_ENV: usize = 64;

/// The largest crontab or cron.d file read or written: the most input
/// `crontab -` is given.
const MAX_CRONTAB: usize = MAX_INPUT;

/// How long `crontab` may take to list or install a crontab.
const CRONTAB_TIME: Duration = Duration::from_secs(60);

/// A job cron runs on a schedule, as Ansible's `cron` module describes
/// one: by default in `/etc/cron.d/NAME`, a file of its own (mode 0644,
/// 0600 when [`secret`](Cron::secret), owned by root, a first line saying
/// chopsticks manages it), run as root or [`user`](Cron::user); with
/// [`for_user`](Cron::for_user), in that user's crontab, after a
/// `# chopsticks: NAME` line that marks it (where Ansible writes
/// `#Ansible: NAME`), the crontab's other lines kept.
///
/// A job in `/etc/cron.d` needs a daemon that reads it: cronie's `crond`
/// or Debian's `cron` (in `/usr/sbin` or `/sbin`); busybox's `crond` reads
/// users' crontabs only, and a Debian host without the `cron` package
/// still has the directory. Without such a daemon the job is refused (its
/// removal is not). A file there whose first line is not ours is someone
/// else's: it is neither overwritten nor removed.
///
/// ```
/// use chopsticks::ops::Cron;
///
/// let backup = Cron::new("nightly-backup", "30 2 * * *", "/usr/local/bin/backup")
///     .user("backup")
///     .env("MAILTO", "")
///     .env("PATH", "/usr/local/bin:/usr/bin:/bin");
/// assert!(backup.validate().is_ok());
/// let mine = Cron::new("fetch", "*/15 * * * *", "$HOME/bin/fetch").for_user("deploy");
/// let gone = Cron::new("nightly-backup", "", "").absent();
/// // `%` ends a crontab line's command: a literal one is written `\%`.
/// assert!(Cron::new("stamp", "@daily", "date +%F > /tmp/d").validate().is_err());
/// assert!(Cron::new("stamp", "@daily", r"date +\%F > /tmp/d").validate().is_ok());
/// assert!(Cron::new("tick", "61 * * * *", "true").validate().is_err());
/// # let _ = (mine, gone);
/// ```
///
/// The schedule is five fields (minute 0-59, hour 0-23, day of month
/// 1-31, month 1-12 or `jan`..`dec`, day of week 0-7 or `sun`..`sat`),
/// each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a list
/// of these (names only alone, as cron's manual has them), or one of
/// `@reboot @yearly @annually @monthly @weekly @daily @midnight @hourly`.
///
/// The command is one line of at most 999 bytes (Debian's cron cuts a
/// longer one short without a word; so too an environment line
/// `KEY=value`), not starting with `-`. Cron reads a `%` in it as the end
/// of the command (what follows is its stdin), which a command such as
/// `date +%F` does not mean: a `%` not escaped is refused, and `\%` is
/// written as it is (cron passes on `%`). Cron reads `\\` as a backslash,
/// so a `%` is escaped when an odd number of backslashes comes right
/// before it: `\\%` is refused, `\\\%` taken. Nothing is escaped for you:
/// the line cron reads is the one you gave.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cron {
    name: String,
    schedule: String,
    command: String,
    user: Option<String>,
    env: Vec<(String, String)>,
    crontab_of: Option<String>,
    absent: bool,
    secret: bool,
}

/// A secret job's command and environment values show as their length.
impl std::fmt::Debug for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |text: &str| match self.secret {
            true => format!("({} bytes, secret)", text.len()),
            false => format!("{text:?}"),
        };
        let env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (&**k, hide(v))).collect();
        f.debug_struct("Cron")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("command", &hide(&self.command))
            .field("user", &self.user)
            .field("env", &env)
            .field("crontab_of", &self.crontab_of)
            .field("absent", &self.absent)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Cron {
    /// The job `name` runs `command` (one line, through `sh`) on
    /// `schedule`. The name is the file's in `/etc/cron.d`: 1 to 64 of
    /// `A-Z a-z 0-9 _ -`, not starting with `-` (what `run-parts`, and so
    /// cron, reads there: a name with a dot is skipped).
    pub fn new(
        name: impl Into<String>,
        schedule: impl Into<String>,
        command: impl Into<String>,
    ) -> Cron {
        Cron {
            name: name.into(),
            schedule: schedule.into(),
            command: command.into(),
            user: None,
            env: Vec::new(),
            crontab_of: None,
            absent: false,
            secret: false,
        }
    }

    /// The user a job in `/etc/cron.d` runs as (default `root`).
    pub fn user(mut self, user: impl Into<String>) -> Cron {
        self.user = Some(user.into());
        self
    }

    /// A `KEY=value` line before the job (`MAILTO` with `""` sends no
    /// mail; `PATH`, `SHELL` ...). Only for a job in `/etc/cron.d`: in a
    /// user's crontab such a line sets every job after it, and is refused.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cron {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The job goes in `user`'s crontab (read with `crontab -u USER -l`,
    /// written with `crontab -u USER -`), and runs as them.
    pub fn for_user(mut self, user: impl Into<String>) -> Cron {
        self.crontab_of = Some(user.into());
        self
    }

    /// The job must not be there: its `/etc/cron.d` file is removed, or
    /// its marker and line leave the crontab. The schedule and command
    /// are not looked at.
    pub fn absent(mut self) -> Cron {
        self.absent = true;
        self
    }

    /// The command (and the environment values) are secret, say a token:
    /// a change shows as changed, never as a diff, no error quotes what
    /// `crontab` said about them, and a file in `/etc/cron.d` is root's
    /// alone to read (mode 0600). A crontab's diff, secret or not, shows
    /// only the job's marker and line, never the crontab's other lines.
    pub fn secret(mut self) -> Cron {
        self.secret = true;
        self
    }

    fn error(&self, message: impl Into<String>) -> OpError {
        OpError::new(OP, &self.name, message)
    }

    /// Checks the spec without a host: the name, the users, the schedule,
    /// the command and the environment. [`plan`](Cron::plan) checks the
    /// same first.
    ///
    /// # Errors
    /// What is wrong, and how to fix it.
    pub fn validate(&self) -> Result<(), OpError> {
        self.job_line().map(drop)
    }

    /// The job's schedule as written and its line (`None` when absent),
    /// the spec checked.
    fn job_line(&self) -> Result<Option<(String, String)>, OpError> {
        let name_ok = (1..=MAX_NAME).contains(&self.name.len())
            && !self.name.starts_with('-')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(OpError::new(
                OP,
                format!("{:?}", self.name),
                format!(
                    "not a job name: 1 to {MAX_NAME} of A-Z a-z 0-9 _ -, not starting with - \
                     (cron skips a file in /etc/cron.d whose name has a dot or other characters)"
                ),
            ));
        }
        for user in self.user.iter().chain(&self.crontab_of) {
            tools::account_name(OP, "user", user)?;
        }
        if let (Some(user), Some(of)) = (&self.user, &self.crontab_of) {
            if user != of {
                return Err(self.error(format!(
                    "user({user}) and for_user({of}): a job in {of}'s crontab runs as {of}; \
                     give one of them"
                )));
            }
        }
        if self.absent {
            return Ok(None);
        }
        let schedule = schedule::check(&self.schedule).map_err(|e| self.error(e))?;
        self.check_command()?;
        if self.crontab_of.is_some() && !self.env.is_empty() {
            return Err(self.error(
                "env(..) with for_user(..): an environment line in a crontab sets every job \
                 after it, not this one alone; use a job in /etc/cron.d (leave out for_user), \
                 or set the variable in the command (`KEY=value command`)",
            ));
        }
        if self.env.len() > MAX_ENV {
            return Err(self.error(format!(
                "{} environment lines: the most a job takes is {MAX_ENV}",
                self.env.len()
            )));
        }
        for (key, value) in &self.env {
            let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                return Err(self.error(format!(
                    "{key:?} is not an environment variable name: A-Z a-z 0-9 _, not \
                     starting with a digit"
                )));
            }
            // As it is written: `KEY=value`, an empty value as `""`.
            let line = key.len() + 1 + value.len().max(2);
            if line > MAX_COMMAND || value.contains(['\n', '\r', '\0']) {
                return Err(self.error(format!(
                    "the line {key}=... is not one line of at most {MAX_COMMAND} bytes (cron \
                     cuts a longer one short): shorten the value"
                )));
            }
        }
        let line = match &self.crontab_of {
            Some(_) => format!("{schedule} {}", self.command),
            None => {
                let user = self.user.as_deref().unwrap_or("root");
                format!("{schedule} {user} {}", self.command)
            }
        };
        Ok(Some((schedule, line)))
    }

    /// Refuses a command that is not one line, is too long, or holds a
    /// `%` cron would cut it at.
    fn check_command(&self) -> Result<(), OpError> {
        let command = &self.command;
        if command.trim().is_empty() {
            return Err(self.error("the command is empty: give the command to run"));
        }
        if command.len() > MAX_COMMAND {
            return Err(self.error(format!(
                "the command is {} bytes long, more than the {MAX_COMMAND} a job's may be (cron \
                 cuts a longer one short): put it in a script",
                command.len()
            )));
        }
        if command.contains(['\n', '\r', '\0']) {
            return Err(self.error(
                "the command is more than one line: cron reads one line per job; put it in \
                 a script, or join it with `;`",
            ));
        }
        if command.trim_start().starts_with('-') {
            return Err(self.error(
                "the command starts with `-`, which cronie reads as a flag of the job (do \
                 not log it), not as part of the command: start it with the program's \
                 path (`./-x`, `/usr/local/bin/-x`)",
            ));
        }
        if bare_percent(command) {
            return Err(self.error(
                "the command has a `%`, where cron ends the command (and feeds what follows \
                 as its stdin): write `\\%` for a percent sign (`date +\\%F`), or put the \
                 command in a script",
            ));
        }
        Ok(())
    }

    /// What making the job so would change.
    ///
    /// # Errors
    /// A spec [`validate`](Cron::validate) refuses; no `/etc/cron.d`, or
    /// no daemon that reads it (or, with [`for_user`](Cron::for_user), no
    /// `crontab` program) on the host; a link or something else than a
    /// file at the job's path, or a file there ops::cron did not make; a
    /// file or crontab that cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        let job = self.job_line()?;
        match self.crontab_of.clone() {
            Some(user) => self.plan_crontab(&user, job),
            None => self.plan_file(job),
        }
    }

    /// The job in a file of its own in `/etc/cron.d`.
    fn plan_file(self, job: Option<(String, String)>) -> Result<Plan, OpError> {
        let path = PathBuf::from(CRON_D).join(&self.name);
        let shown = path.display().to_string();
        let fail = |message: String| OpError::new(OP, &shown, message);
        let entry = files::entry_at(&path).map_err(|e| fail(describe(&e)))?;
        match entry.as_ref().map(|e| e.kind) {
            Some(Kind::Link) => {
                return Err(fail(
                    "is a symbolic link: ops::cron does not write through one; remove it".into(),
                ))
            }
            Some(Kind::Dir | Kind::Other) => {
                return Err(fail("is not a regular file: remove it".into()))
            }
            Some(Kind::File) | None => {}
        }
        let old = match entry {
            Some(_) => read_bounded_text(OP, &path, MAX_CRONTAB)?.unwrap_or_default(),
            None => String::new(),
        };
        let header = self.header();
        if entry.is_some() && old.lines().next() != Some(header.trim_end()) {
            return Err(fail(format!(
                "is not a file ops::cron made (its first line is not `{}`): ops::cron neither \
                 overwrites nor removes another's file; give the job another name",
                header.trim_end()
            )));
        }
        let Some((schedule, job)) = job else {
            return Ok(match entry {
                None => Plan::unchanged(format!("{shown} is absent")),
                Some(_) => Plan::change(format!("remove {shown}"), None, move |w| {
                    w.remove_file(&path)
                }),
            });
        };
        if entry.is_none() && !Path::new(CRON_D).is_dir() {
            return Err(fail(format!(
                "there is no directory {CRON_D} on this host: install cron (cronie, Debian's \
                 cron), or put the job in a user's crontab (for_user(..))"
            )));
        }
        if !reads_cron_d() {
            return Err(fail(format!(
                "no cron daemon here reads {CRON_D}: install cron, or use for_user (busybox's \
                 crond reads users' crontabs only)"
            )));
        }
        let new = self.file_text(&job);
        let user = self.user.as_deref().unwrap_or("root");
        let needs = match files::accounts::user(user) {
            Ok(Some(_)) => String::new(),
            Ok(None) => format!("; needs user {user}, which must exist by then (ops::user)"),
            Err(e) => return Err(fail(format!("cannot look up {user}: {}", describe(&e)))),
        };
        let root = Owner {
            user: Some("0".into()),
            group: Some("0".into()),
        };
        let diff = self.diff(&shown, &old, &new);
        let content_changes = old != new;
        let mode = self.file_mode();
        let write = move |w: &Writer| w.write_file(&path, new.as_bytes(), mode, &root);
        let Some(entry) = entry else {
            let summary = format!("create {shown}: `{schedule}` as {user}{needs}");
            return Ok(Plan::change(summary, diff, write));
        };
        let mut changes = Vec::new();
        if content_changes {
            changes.push(format!("the job: `{schedule}` as {user}"));
        }
        if entry.mode != mode {
            changes.push(format!("mode {:04o} -> {mode:04o}", entry.mode));
        }
        if (entry.uid, entry.gid) != (0, 0) {
            changes.push(format!("owner {}:{} -> 0:0", entry.uid, entry.gid));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged(format!("{shown}: `{schedule}` as {user}")));
        }
        let summary = format!("{shown}: {}{needs}", changes.join(", "));
        Ok(Plan::change(summary, diff, write))
    }

    /// The first line of the job's file in `/etc/cron.d`: what says
    /// ops::cron made it.
    fn header(&self) -> String {
        format!(
            "# Managed by chopsticks (ops::cron): the job {}. Changes here are overwritten.\n",
            self.name
        )
    }

    /// The job's file in `/etc/cron.d`: the header, the environment, the
    /// job's line.
    fn file_text(&self, job: &str) -> String {
        let mut text = self.header();
        for (key, value) in &self.env {
            let value = if value.is_empty() { "\"\"" } else { value };
            text.push_str(&format!("{key}={value}\n"));
        }
        text.push_str(job);
        text.push('\n');
        text
    }

    /// The mode of the job's file: 0600 when it is secret (no one but
    /// root reads it), else 0644.
    fn file_mode(&self) -> u32 {
        match self.secret {
            true => 0o600,
            false => 0o644,
        }
    }

    /// The diff, unless the job is secret.
    fn diff(&self, shown: &str, old: &str, new: &str) -> Option<String> {
        match self.secret {
            true => None,
            false => diff(shown, old.as_bytes(), new.as_bytes()),
        }
    }

    /// The job in `user`'s crontab.
    fn plan_crontab(self, user: &str, job: Option<(String, String)>) -> Result<Plan, OpError> {
        let shown = format!("crontab of {user}");
        let fail = |message: String| OpError::new(OP, &shown, message);
        let crontab = tools::tool("crontab").ok_or_else(|| {
            fail(
                "this host has no `crontab` program: install cron (cronie, Debian's cron, or \
                 busybox's crontab), or put the job in /etc/cron.d (leave out for_user)"
                    .into(),
            )
        })?;
        let crontab = crontab.display().to_string();
        let exists = files::accounts::user(user)
            .map_err(|e| fail(format!("cannot look up {user}: {}", describe(&e))))?
            .is_some();
        let what = match &job {
            Some((schedule, _)) => format!("the job {} (`{schedule}`)", self.name),
            None => format!("the job {}", self.name),
        };
        let job = job.map(|(_, line)| line);
        if !exists {
            if job.is_none() {
                return Ok(Plan::unchanged(format!(
                    "user {user} does not exist: no job of theirs to remove"
                )));
            }
            let summary = format!(
                "{shown}: add {what}; needs user {user}, which must exist by then (ops::user)"
            );
            let user = user.to_owned();
            return Ok(Plan::change(summary, None, move |w| {
                if files::accounts::user(&user).ok().flatten().is_none() {
                    return Err(OpError::new(
                        OP,
                        format!("crontab of {user}"),
                        format!(
                            "there is no user {user} on this host: create it first (ops::user)"
                        ),
                    ));
                }
                self.plan()?.apply_with(w)
            }));
        }
        let old = list(&crontab, user, &shown)?;
        let new = tab::edit(&old, &self.name, job.as_deref());
        if new == old {
            return Ok(Plan::unchanged(match job {
                Some(_) => format!("{shown}: {what} is there"),
                None => format!("{shown}: the job {} is absent", self.name),
            }));
        }
        if new.len() > MAX_CRONTAB {
            return Err(fail(format!(
                "would be {} bytes, more than the {MAX_CRONTAB} ops::cron writes",
                new.len()
            )));
        }
        let verb = match (&job, tab::has(&old, &self.name)) {
            (None, _) => "remove",
            (Some(_), true) => "update",
            (Some(_), false) => "add",
        };
        // Only our lines: the crontab's others (their tokens) stay unshown.
        let ours = tab::job_block(&self.name, job.as_deref());
        let diff = self.diff(&shown, &tab::block(&old, &self.name), &ours);
        let (user, secret) = (user.to_owned(), self.secret);
        Ok(Plan::change(
            format!("{shown}: {verb} {what}"),
            diff,
            move |w| install(w, &crontab, &user, &new, secret),
        ))
    }
}

/// The daemons that read `/etc/cron.d`: cronie's `crond`, Debian's
/// (vixie) `cron`. Busybox's `crond`, a link to busybox, does not.
const CRON_D_DAEMONS: [&str; 4] = [
    "/usr/sbin/cron",
    "/usr/sbin/crond",
    "/sbin/cron",
    "/sbin/crond",
];

/// Whether a cron daemon that reads `/etc/cron.d` is installed: one of
/// [`CRON_D_DAEMONS`], a program that is not busybox (by a link's target,
/// or as a hard link to `/bin/busybox`).
fn reads_cron_d() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let busybox = std::fs::metadata("/bin/busybox").ok();
    CRON_D_DAEMONS.iter().any(|path| {
        let Ok(real) = std::fs::canonicalize(path) else {
            return false;
        };
        let named_busybox = real
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("busybox"));
        let Ok(meta) = std::fs::metadata(&real) else {
            return false;
        };
        let same_as_busybox = busybox
            .as_ref()
            .is_some_and(|b| (b.dev(), b.ino()) == (meta.dev(), meta.ino()));
        meta.is_file() && !named_busybox && !same_as_busybox
    })
}

/// Whether `command` has a `%` cron ends the command at: one not escaped
/// by a backslash, that is with an even run of backslashes right before
/// it (cron reads `\\` as one backslash, so `\\%` has a bare `%`).
fn bare_percent(command: &str) -> bool {
    let bytes = command.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
        b == b'%' && run % 2 == 0
    })
}

/// `user`'s crontab, as `crontab -u USER -l` prints it; empty when they
/// have none.
fn list(crontab: &str, user: &str, shown: &str) -> Result<String, OpError> {
    let argv: Vec<String> = vec![crontab.into(), "-u".into(), user.into(), "-l".into()];
    let program = Program {
        argv: &argv,
        env: &[("LC_ALL".into(), "C".into())],
        cwd: None,
        shown: &format!("`crontab -u {user} -l`"),
        timeout: Some(CRONTAB_TIME),
    };
    let mut out = Vec::new();
    let (status, stderr) = program.stream(OP, None, &mut |bytes| {
        if out.len() + bytes.len() > MAX_CRONTAB {
            return Err(OpError::new(
                OP,
                shown,
                format!("is larger than the {MAX_CRONTAB} bytes ops::cron reads: trim it"),
            ));
        }
        out.extend_from_slice(bytes);
        Ok(())
    })?;
    // cronie and Debian's cron say "no crontab for USER"; busybox cannot
    // open the user's file.
    let none =
        stderr.contains("no crontab for") || stderr.contains(&format!("can't open '{user}'"));
    match status {
        0 => bounded_text(OP, shown, out, MAX_CRONTAB),
        _ if none => Ok(String::new()),
        _ => Err(OpError::new(
            OP,
            shown,
            format!(
                "`crontab -u {user} -l` exited with status {status}: {} (is cron installed, \
                 with its spool directory?)",
                stderr.trim()
            ),
        )),
    }
}

/// Installs `text` as `user`'s crontab with `crontab -u USER -`.
fn install(w: &Writer, crontab: &str, user: &str, text: &str, secret: bool) -> Result<(), OpError> {
    let argv: Vec<String> = vec![crontab.into(), "-u".into(), user.into(), "-".into()];
    let out = w.run_with_input(&argv, text.as_bytes(), CRONTAB_TIME)?;
    if out.status == 0 {
        return Ok(());
    }
    let said = match secret {
        true => "(what it said is not shown: the job is secret)".to_owned(),
        false => tools::tail(&out, 3),
    };
    Err(OpError::new(
        OP,
        format!("crontab of {user}"),
        format!(
            "`crontab -u {user} -` exited with status {}: {said}",
            out.status
        ),
    ))
}

/// Makes a cron job as [`Cron`] describes it.
///
/// # Errors
/// [`OpError`] naming the job (its file or crontab) and what to do.
#[remote]
pub fn cron(spec: Cron, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_commands_and_environments_cron_would_misread_are_refused() {
        let job = |name: &str| Cron::new(name, "@daily", "true");
        for bad in ["", "a.b", "-x", "a b", "../x", "a/b", "ä", &"x".repeat(65)] {
            let e = job(bad).validate().unwrap_err();
            assert!(e.message.contains("not a job name"), "{bad:?}: {e}");
            assert!(job(bad).absent().validate().is_err());
        }
        for good in ["backup", "a_b-1", "X"] {
            job(good).validate().unwrap();
        }
        let refused = |spec: Cron, says: &str| {
            let e = spec.clone().plan().unwrap_err();
            assert!(e.message.contains(says), "{spec:?}: {e}");
            assert_eq!(e.operation, "ops::cron");
        };
        refused(job("j").user("-r"), "not a user name");
        refused(job("j").for_user("a b"), "not a user name");
        refused(job("j").user("a").for_user("b"), "give one of them");
        refused(Cron::new("j", "@daily", "a\nb"), "more than one line");
        refused(Cron::new("j", "@daily", " "), "the command is empty");
        refused(Cron::new("j", "@daily", "date +%F"), "write `\\%`");
        refused(Cron::new("j", "@daily", r"echo a\\%b"), "write `\\%`");
        refused(Cron::new("j", "@daily", r"a\%b%c"), "write `\\%`");
        Cron::new("j", "@daily", r"echo a\\\%b").validate().unwrap();
        Cron::new("j", "@daily", r"echo a\\ b").validate().unwrap();
        refused(
            Cron::new("j", "@daily", "x".repeat(1000)),
            "more than the 999",
        );
        Cron::new("j", "@daily", "x".repeat(999))
            .validate()
            .unwrap();
        refused(Cron::new("j", "@daily", "-true"), "starts with `-`");
        refused(Cron::new("j", "@daily", " -true"), "starts with `-`");
        refused(job("j").env("X", "v".repeat(998)), "at most 999 bytes");
        job("j").env("X", "v".repeat(997)).validate().unwrap();
        refused(Cron::new("j", "* * * *", "true"), "has 4 fields");
        refused(job("j").env("1X", "a"), "not an environment variable name");
        refused(job("j").env("X", "a\nb"), "not one line");
        refused(
            job("j").env("X", "a").for_user("u"),
            "sets every job after it",
        );
        Cron::new("j", "@daily", r"date +\%F").validate().unwrap();
        // Absent looks at the name only.
        Cron::new("j", "", "").absent().validate().unwrap();
    }

    #[test]
    fn a_cron_d_file_has_our_header_and_a_secret_one_is_for_root_alone() {
        let job = Cron::new("j", "@daily", "x").env("MAILTO", "");
        let line = job.job_line().unwrap().unwrap().1;
        assert_eq!(
            job.file_text(&line),
            "# Managed by chopsticks (ops::cron): the job j. Changes here are overwritten.\n\
             MAILTO=\"\"\n@daily root x\n"
        );
        assert_eq!(job.file_mode(), 0o644);
        assert_eq!(job.secret().file_mode(), 0o600);
    }

    #[test]
    fn a_cron_d_job_is_refused_where_no_daemon_reads_cron_d() {
        if reads_cron_d() || !Path::new(CRON_D).is_dir() {
            return;
        }
        let name = format!("cs-unit-{}", std::process::id());
        let e = Cron::new(&name, "@daily", "true").plan().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "ops::cron /etc/cron.d/{name}: no cron daemon here reads /etc/cron.d: install \
                 cron, or use for_user (busybox's crond reads users' crontabs only)"
            )
        );
        // Removing what is not there needs no daemon.
        assert!(
            !Cron::new(&name, "", "")
                .absent()
                .plan()
                .unwrap()
                .planned()
                .changed
        );
    }

    #[test]
    fn lines_are_written_as_cron_reads_them_and_secrets_are_not_shown() {
        let line = |spec: Cron| spec.job_line().unwrap().unwrap().1;
        assert_eq!(
            line(Cron::new("j", " */5  * * * *", "run it")),
            "*/5 * * * * root run it"
        );
        assert_eq!(
            line(Cron::new("j", "@daily", "x").user("www-data")),
            "@daily www-data x"
        );
        assert_eq!(
            line(Cron::new("j", "0 1 * * *", "x").for_user("app")),
            "0 1 * * * x"
        );
        let secret = Cron::new("j", "@daily", "curl -H 'token: s3cr3t' x")
            .env("API_KEY", "hunter2")
            .secret();
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("API_KEY"), "{shown}");
        // A secret's errors do not quote it either.
        let e = Cron::new("j", "@daily", "token=s3cr3t %")
            .secret()
            .validate()
            .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
