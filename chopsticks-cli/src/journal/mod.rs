//! The run journal: every run of a kit tool appends one JSON line to
//! `$XDG_STATE_HOME/chopsticks/TOOL/journal.jsonl` (`~/.local/state` when
//! `XDG_STATE_HOME` is unset): the tool, its arguments (secrets masked),
//! the user, start and end (UTC), the exit code, and per host and step the
//! status, whether it changed, its summary, its diff and how long it took
//! on the host. `TOOL --history` and `TOOL --history HOST` read it back.
//!
//! The record is written once, when the run ends (the first Ctrl-C,
//! SIGTERM or SIGHUP included, as the run ends through its recap; a panic
//! in the tool's steps too, recorded as aborted with exit 101): a run
//! killed outright (SIGKILL, a second Ctrl-C) leaves no record, never
//! half of one. A record is one `write` to a file opened for
//! appending, under an exclusive lock, so runs at the same time never
//! interleave.
//!
//! Bounds: the file turns into `journal.1.jsonl` (the older ones into
//! `journal.2.jsonl`, ...; [`KEEP`] are kept) when the next record would
//! take it past [`MAX_JOURNAL`] bytes; a step's summary is cut at
//! [`MAX_SUMMARY`] bytes and its diff at [`MAX_DIFF`], a record's diffs
//! together at [`MAX_RECORD_DIFFS`] (the later ones are left out, with a
//! note), a record at [`MAX_RECORD`] ([`Run::line`]). A torn last line
//! (a run killed while writing) is ended before the next record. The
//! directory is made mode 0700 and the file 0600 (an existing one of the
//! user's is set to these modes); a link on
//! the way that someone other than the user or root owns, a directory or
//! a journal someone else owns, and a link at the journal itself are
//! refused.
//!
//! ```
//! use chopsticks_cli::journal::{Journal, Run, Step};
//!
//! let dir = std::env::temp_dir().join(format!("journal-doc-{}", std::process::id()));
//! let journal = Journal::new(&dir);
//! let mut run = Run::new("motd", ["-H", "web1"]);
//! run.steps.push(Step::new("web1", "motd", "changed", "/etc/motd: content changed"));
//! run.end(0);
//! journal.append(&run).unwrap();
//! let runs = journal.runs(Some("web1"), 20).unwrap();
//! assert_eq!(runs[0].steps[0].summary, "/etc/motd: content changed");
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

pub(crate) mod file;

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use file::Journal;

/// The size past which the journal turns into `journal.1.jsonl`.
pub const MAX_JOURNAL: u64 = 16 << 20;
/// How many turned journals are kept (`journal.1.jsonl` ...).
pub const KEEP: usize = 3;
/// The most of one step's summary (or error) a record keeps.
pub const MAX_SUMMARY: usize = 4 << 10;
/// The most of one step's diff a record keeps.
pub const MAX_DIFF: usize = 64 << 10;
/// The most of all its steps' diffs one record keeps.
pub const MAX_RECORD_DIFFS: usize = 4 << 20;
/// The most bytes one record (one line) takes: past it, the summaries of
/// `ok` steps are cut, then the last steps left out, with a
/// [`note`](Run::note).
pub const MAX_RECORD: usize = 8 << 20;
/// What an `ok` step's summary is cut to in a record past [`MAX_RECORD`].
const SHORT_SUMMARY: usize = 256;
/// The environment variable that turns the journal off (`1`).
pub const NO_JOURNAL_ENV: &str = "CHOPSTICKS_NO_JOURNAL";

/// Words that make a flag's value, or a `KEY=VALUE` word's, secret
/// (in any case, anywhere in the name): `--db-password X`, `--token=X`,
/// `-p X` when `-p` is `--passphrase`, `API_KEY=X` are written
/// `--db-password (secret)`, `API_KEY=(secret)`. (`pass` covers
/// `password`, `passwd` and `passphrase`; `key` covers `api_key`,
/// `apikey` and `api-key`.)
const SECRET_WORDS: [&str; 6] = ["pass", "secret", "token", "credential", "auth", "key"];

/// The tool's command line as clap sees it, set once by
/// [`parse`](crate::parse): it tells which flags take a value and the long
/// name of each short flag, for [`Run::new`]'s masking.
static COMMAND: std::sync::OnceLock<clap::Command> = std::sync::OnceLock::new();

/// Tells [`Run::new`] the tool's command line (its flags, which take a
/// value, their short and long names), so that it masks `-p X` when `-p`
/// is `--password` and never hides the word after a secret-sounding flag
/// that takes no value. [`parse`](crate::parse) calls it; the first call
/// wins.
pub fn set_command(mut command: clap::Command) {
    command.build();
    let _ = COMMAND.set(command);
}

/// One run of a tool, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The tool's name (its program's).
    pub tool: String,
    /// Its arguments, the values of secret-looking flags masked
    /// ([`Run::new`]).
    pub args: Vec<String>,
    /// Who ran it: the name of the process's user (its ID when it has
    /// none), and `(sudo from NAME)` when `SUDO_USER` names who ran sudo.
    pub user: String,
    /// When it started, UTC (`2026-12-07T08:13:19.123Z`).
    pub start: String,
    /// When it ended, UTC.
    pub end: String,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Its exit code.
    pub exit: i32,
    /// Whether it ran in check mode (`--check`): its `changed` steps only
    /// would have changed.
    #[serde(default)]
    pub check: bool,
    /// Each host's steps, in the order they ran.
    pub steps: Vec<Step>,
    /// What the record left out to stay within [`MAX_RECORD`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it started, for [`end`](Run::end).
    #[serde(skip)]
    started: Option<Instant>,
}

/// One step on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The host.
    pub host: String,
    /// The step (`motd`, `deploy/config`).
    pub step: String,
    /// `ok`, `changed`, `failed`, `unreachable`, `interrupted` or
    /// `skipped` (not run: the run stopped before its batch, or an earlier
    /// step of its plan failed).
    pub status: String,
    /// Whether it changed something (would, in check mode).
    pub changed: bool,
    /// What is there, or what changed; a failure's error.
    pub summary: String,
    /// Its diff, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// How long it took on the host, in milliseconds, when measured there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    /// The keyed digest of the content it writes
    /// ([`Change::digest`](chopsticks::ops::Change::digest)), made only
    /// in `--save-plan` and `--apply-plan` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Step {
    /// A step of `host`, without diff or duration.
    pub fn new(host: &str, step: &str, status: &str, summary: &str) -> Step {
        Step {
            host: host.to_owned(),
            step: step.to_owned(),
            status: status.to_owned(),
            changed: status == "changed",
            summary: cut(summary, MAX_SUMMARY),
            diff: None,
            ms: None,
            digest: None,
        }
    }

    /// With its diff (cut at [`MAX_DIFF`]).
    pub fn diff(mut self, diff: Option<&str>) -> Step {
        self.diff = diff.map(|d| cut(d, MAX_DIFF));
        self
    }

    /// With the keyed digest of its content.
    pub fn digest(mut self, digest: Option<&str>) -> Step {
        self.digest = digest.map(str::to_owned);
        self
    }

    /// With how long it took on the host.
    pub fn duration(mut self, duration: Option<Duration>) -> Step {
        self.ms = duration.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
        self
    }

    /// Whether it failed, or its host could not be reached.
    pub fn failed(&self) -> bool {
        matches!(
            self.status.as_str(),
            "failed" | "unreachable" | "interrupted"
        )
    }
}

impl Run {
    /// A run that starts now: this tool, these arguments (secrets masked,
    /// see [`masked_args`]; through the command line [`set_command`] gave,
    /// else through the kit's own flags), the user (see [`Run::user`]).
    pub fn new<S: AsRef<str>>(tool: &str, args: impl IntoIterator<Item = S>) -> Run {
        let now = SystemTime::now();
        Run {
            tool: tool.to_owned(),
            args: match COMMAND.get() {
                Some(command) => masked_args(command, args),
                None => {
                    use clap::Args as _;
                    let mut command = crate::Fleet::augment_args(clap::Command::new("tool"));
                    command.build();
                    masked_args(&command, args)
                }
            },
            user: user(),
            start: utc(now),
            end: String::new(),
            seconds: 0.0,
            exit: 0,
            check: false,
            steps: Vec::new(),
            note: None,
            started: Some(Instant::now()),
        }
    }

    /// Ends the run now with `exit`, and bounds its diffs together
    /// ([`MAX_RECORD_DIFFS`]).
    pub fn end(&mut self, exit: i32) {
        let now = SystemTime::now();
        self.end = utc(now);
        self.exit = exit;
        if let Some(started) = self.started {
            self.seconds = started.elapsed().as_secs_f64();
        }
        let mut budget = MAX_RECORD_DIFFS;
        for step in &mut self.steps {
            if let Some(diff) = &step.diff {
                match budget.checked_sub(diff.len()) {
                    Some(left) => budget = left,
                    None => {
                        step.diff = Some(format!(
                            "(diff of {} bytes left out: the run's diffs passed {MAX_RECORD_DIFFS} bytes)\n",
                            diff.len()
                        ));
                        budget = 0;
                    }
                }
            }
        }
    }

    /// The run as one journal line (JSON and `\n`), at most
    /// [`MAX_RECORD`] bytes: past it, `ok` steps' summaries are cut to a
    /// few hundred bytes, then the last steps are left out (the arguments
    /// too, in the end), each time with a [`note`](Run::note).
    ///
    /// # Errors
    /// The run does not serialize (it always does).
    pub fn line(&self) -> std::io::Result<Vec<u8>> {
        let json = |run: &Run| serde_json::to_vec(run).map_err(std::io::Error::other);
        let mut line = json(self)?;
        if line.len() > MAX_RECORD {
            let mut run = self.clone();
            for step in run.steps.iter_mut().filter(|s| s.status == "ok") {
                step.summary = cut(&step.summary, SHORT_SUMMARY);
            }
            run.note = Some(format!(
                "the record passed {MAX_RECORD} bytes: the summaries of ok steps are cut"
            ));
            line = json(&run)?;
            let total = run.steps.len();
            let mut left = line.len();
            while left > MAX_RECORD {
                let Some(step) = run.steps.pop() else { break };
                left = left.saturating_sub(json_len(&step)? + 1);
            }
            if run.steps.len() < total {
                run.note = Some(format!(
                    "the record passed {MAX_RECORD} bytes: the summaries of ok steps are cut, \
                     and the last {} of {total} steps are left out",
                    total - run.steps.len()
                ));
            }
            line = json(&run)?;
            if line.len() > MAX_RECORD {
                run.args = vec![format!("({} arguments left out)", run.args.len())];
                line = json(&run)?;
            }
        }
        line.push(b'\n');
        Ok(line)
    }

    /// Each host of the run and how it went (its worst step:
    /// `unreachable`, `failed`, `changed`, `ok`), in the order they first
    /// appear.
    pub fn hosts(&self) -> Vec<(&str, &str)> {
        let rank = |s: &str| match s {
            "unreachable" => 5,
            "interrupted" => 4,
            "failed" => 3,
            "skipped" => 2,
            "changed" => 1,
            _ => 0,
        };
        let mut hosts: Vec<(&str, &str)> = Vec::new();
        for step in &self.steps {
            match hosts.iter_mut().find(|(h, _)| *h == step.host) {
                Some((_, worst)) if rank(&step.status) > rank(worst) => *worst = &step.status,
                Some(_) => {}
                None => hosts.push((&step.host, &step.status)),
            }
        }
        hosts
    }
}

/// How many bytes `step` takes as JSON.
fn json_len(step: &Step) -> std::io::Result<usize> {
    serde_json::to_vec(step)
        .map(|v| v.len())
        .map_err(std::io::Error::other)
}

/// The name of this process's user, or its ID; and who ran sudo.
fn user() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for its length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    let name = match rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: getpwuid_r set pw_name to a NUL-terminated string in `buf`.
        true => unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
        false => format!("uid {uid}"),
    };
    match std::env::var("SUDO_USER") {
        Ok(by) if !by.is_empty() => format!("{name} (sudo from {by})"),
        _ => name,
    }
}

/// Whether a flag's or a variable's name sounds secret ([`SECRET_WORDS`]).
fn secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// `word` with a URL's password masked (`https://u:***@host/`, see
/// [`url_shown`](chopsticks::ops::url_shown)), and the value of a
/// `KEY=VALUE` word whose key sounds secret.
fn masked_word(word: &str) -> String {
    match word.split_once('=') {
        Some((key, _)) if !key.is_empty() && !key.starts_with('-') && secret_name(key) => {
            format!("{key}=(secret)")
        }
        Some((key, value)) => format!("{key}={}", chopsticks::ops::url_shown(value)),
        None => chopsticks::ops::url_shown(word),
    }
}

/// `args` (without the program's name) as the journal keeps them, parsed
/// the way `command` would: the value of a flag whose long name sounds
/// secret (holds `pass`, `secret`, `token`, `credential`, `auth` or `key`)
/// is `(secret)`, whether given as `--password X`, `--password=X`, `-p X`
/// or `-pX`; a flag that takes no value never hides the next word; a
/// `KEY=VALUE` word whose key sounds secret is `KEY=(secret)`, a flag's
/// value too; a URL's password is `***`. A flag `command` does not know is taken to take a
/// value when its name sounds secret and the next word is no flag.
///
/// ```
/// use clap::{Arg, ArgAction, Command};
/// use chopsticks_cli::journal::masked_args;
///
/// let cmd = Command::new("t")
///     .arg(Arg::new("password").short('p').long("password"))
///     .arg(Arg::new("ask-pass").long("ask-pass").action(ArgAction::SetTrue))
///     .arg(Arg::new("rest").num_args(0..));
/// let args = ["-p", "hunter2", "--ask-pass", "web1", "TOKEN=x", "https://u:pw@h/r"];
/// assert_eq!(
///     masked_args(&cmd, args),
///     ["-p", "(secret)", "--ask-pass", "web1", "TOKEN=(secret)", "https://u:***@h/r"]
/// );
/// ```
pub fn masked_args<S: AsRef<str>>(
    command: &clap::Command,
    args: impl IntoIterator<Item = S>,
) -> Vec<String> {
    let mut command = command;
    let mut out: Vec<String> = Vec::new();
    // The next word is a flag's value: `Some(true)` a secret one.
    let mut value: Option<bool> = None;
    let mut positional = false;
    let words: Vec<String> = args_owned(args);
    for (i, word) in words.iter().enumerate() {
        let word = word.as_str();
        if let Some(secret) = value.take() {
            out.push(match secret {
                true => "(secret)".to_owned(),
                false => masked_word(word),
            });
            continue;
        }
        let next_is_value = || words.get(i + 1).is_some_and(|w| !w.starts_with('-'));
        if positional || word == "-" || !word.starts_with('-') {
            if !positional {
                if let Some(sub) = command.find_subcommand(word) {
                    command = sub;
                }
            }
            out.push(masked_word(word));
            continue;
        }
        if word == "--" {
            positional = true;
            out.push(word.to_owned());
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, given) = match long.split_once('=') {
                Some((name, v)) => (name, Some(v)),
                None => (long, None),
            };
            let arg = command.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|all| all.contains(&name))
            });
            let secret = secret_name(name);
            match given {
                Some(_) if secret => out.push(format!("--{name}=(secret)")),
                Some(v) => out.push(format!("--{name}={}", masked_word(v))),
                None => {
                    let takes = match arg {
                        Some(arg) => arg.get_action().takes_values(),
                        None => secret && next_is_value(),
                    };
                    if takes {
                        value = Some(secret);
                    }
                    out.push(word.to_owned());
                }
            }
            continue;
        }
        // A cluster of short flags: `-vv`, `-pX`, `-p=X`, `-p X`.
        let cluster = &word[1..];
        let mut shown = String::from("-");
        let mut rest = cluster;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            shown.push(c);
            let arg = command.get_arguments().find(|a| {
                a.get_short() == Some(c)
                    || a.get_all_short_aliases()
                        .is_some_and(|all| all.contains(&c))
            });
            let Some(arg) = arg else {
                // Unknown: keep the rest as it is (masked as a word).
                shown.push_str(&masked_word(rest));
                break;
            };
            if !arg.get_action().takes_values() {
                continue;
            }
            let secret =
                arg.get_long().is_some_and(secret_name) || secret_name(arg.get_id().as_str());
            let (eq, v) = match rest.strip_prefix('=') {
                Some(v) => ("=", v),
                None => ("", rest),
            };
            match (v.is_empty(), secret) {
                (true, _) => value = Some(secret),
                (false, true) => shown.push_str(&format!("{eq}(secret)")),
                (false, false) => shown.push_str(&format!("{eq}{}", masked_word(v))),
            }
            break;
        }
        out.push(shown);
    }
    out
}

/// The words of `args`, owned.
fn args_owned<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Vec<String> {
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// `text` cut at `max` bytes (on a character's edge), with a note.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n(cut at {max} of {} bytes)", &text[..end], text.len())
}

/// `time` in UTC as `2026-12-07T08:13:19.123Z`.
pub fn utc(time: SystemTime) -> String {
    chopsticks::UtcTime::of(time).to_string()
}

/// Whether the environment turns the journal off
/// (`CHOPSTICKS_NO_JOURNAL` set, and neither empty nor `0`).
pub fn off_by_env() -> bool {
    std::env::var_os(NO_JOURNAL_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn records_are_bounded_and_secrets_masked() {
        let long = "x".repeat(MAX_DIFF + 10);
        let step = Step::new("a", "s", "changed", &"é".repeat(MAX_SUMMARY)).diff(Some(&long));
        assert!(step.summary.len() < MAX_SUMMARY + 40);
        assert!(step.summary.ends_with(&format!(
            "(cut at {MAX_SUMMARY} of {} bytes)",
            2 * MAX_SUMMARY
        )));
        assert!(step.diff.as_ref().unwrap().len() < MAX_DIFF + 40);
        let mut big = Run::new("tool", ["-H", "a"]);
        big.steps = vec![step; MAX_RECORD_DIFFS / MAX_DIFF + 5];
        big.end(0);
        let kept: usize = big
            .steps
            .iter()
            .filter_map(|s| s.diff.as_ref())
            .map(String::len)
            .sum();
        assert!(kept < MAX_RECORD_DIFFS + 5 * 200, "{kept}");
        assert!(big
            .steps
            .last()
            .unwrap()
            .diff
            .as_ref()
            .unwrap()
            .starts_with("(diff of"));
        use clap::{Arg, ArgAction, Command};
        let command = Command::new("t")
            .arg(Arg::new("hosts").short('H').long("hosts"))
            .arg(Arg::new("user").short('u').long("user"))
            .arg(Arg::new("db-password").long("db-password"))
            .arg(Arg::new("passphrase").short('P').long("passphrase"))
            .arg(Arg::new("verbose").short('v').action(ArgAction::Count))
            .arg(
                Arg::new("ask-pass")
                    .long("ask-pass")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("no-token")
                    .long("no-token")
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("repo").long("repo"))
            .arg(Arg::new("rest").num_args(0..));
        let args = masked_args(
            &command,
            [
                "-H",
                "a",
                "--db-password",
                "hunter2",
                "--api-key=xyz",
                "--ask-pass",
                "-u",
                "me",
                "--token",
                "t",
                "-vP",
                "pw1",
                "-Ppw2",
                "-P=pw3",
                "--no-token",
                "web1",
                "--repo",
                "https://ci:pw4@git.example.org/a.git",
                "DB_PASSWORD=pw5",
                "api_key=pw6",
                "MODE=fast",
                "--repo",
                "DB_PASSWORD=pw8",
                "--repo=TOKEN=pw9",
                "--",
                "AUTH=pw7",
            ],
        );
        assert_eq!(
            args,
            [
                "-H",
                "a",
                "--db-password",
                "(secret)",
                "--api-key=(secret)",
                "--ask-pass",
                "-u",
                "me",
                "--token",
                "(secret)",
                "-vP",
                "(secret)",
                "-P(secret)",
                "-P=(secret)",
                "--no-token",
                "web1",
                "--repo",
                "https://ci:***@git.example.org/a.git",
                "DB_PASSWORD=(secret)",
                "api_key=(secret)",
                "MODE=fast",
                "--repo",
                "DB_PASSWORD=(secret)",
                "--repo=TOKEN=(secret)",
                "--",
                "AUTH=(secret)",
            ]
        );
        // A record past MAX_RECORD: ok summaries cut, then steps left
        // out, and what is written reads back.
        let mut huge = Run::new("tool", ["-H", "a"]);
        let summary = "s".repeat(MAX_SUMMARY - 10);
        let count = 2 * MAX_RECORD / MAX_SUMMARY;
        for n in 0..count {
            let status = if n % 2 == 0 { "ok" } else { "changed" };
            huge.steps
                .push(Step::new("a", &format!("s{n}"), status, &summary));
        }
        huge.end(0);
        let line = huge.line().unwrap();
        assert!(line.len() <= MAX_RECORD + 1, "{}", line.len());
        let back: Run = serde_json::from_slice(&line).unwrap();
        assert!(back.steps.len() < count && back.steps.len() > count / 4);
        assert!(back.steps[0].summary.len() < SHORT_SUMMARY + 40);
        assert_eq!(back.steps[1].summary, summary);
        let note = back.note.unwrap();
        assert!(
            note.contains(&format!("{} steps are left out", count)),
            "{note}"
        );
        let joined = args.join(" ");
        assert!(!joined.contains("pw"), "{joined}");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_millis(1_796_631_199_123)),
            "2026-12-07T08:13:19.123Z"
        );
    }
}
