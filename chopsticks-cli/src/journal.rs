//! The run journal: every run of a kit tool appends one JSON line to
//! `$XDG_STATE_HOME/chopsticks/TOOL/journal.jsonl` (`~/.local/state` when
//! `XDG_STATE_HOME` is unset): the tool, its arguments (secrets masked),
//! the user, start and end (UTC), the exit code, and per host and step the
//! status, whether it changed, its summary, its diff and how long it took
//! on the host. `TOOL --history` and `TOOL --history HOST` read it back.
//!
//! The record is written once, when the run ends (Ctrl-C included, as the
//! run ends through its recap): a run killed outright leaves no record,
//! never half of one. A record is one `write` to a file opened for
//! appending, under an exclusive lock, so runs at the same time never
//! interleave.
//!
//! Bounds: the file turns into `journal.1.jsonl` (the older ones into
//! `journal.2.jsonl`, ...; [`KEEP`] are kept) when the next record would
//! take it past [`MAX_JOURNAL`] bytes; a step's summary is cut at
//! [`MAX_SUMMARY`] bytes and its diff at [`MAX_DIFF`], a record's diffs
//! together at [`MAX_RECORD_DIFFS`] (the later ones are left out, with a
//! note). The directory is made mode 0700 and the file 0600; a link on
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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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
/// The most of one journal file `--history` reads (its newest part).
const MAX_READ: u64 = 4 * MAX_JOURNAL;
/// The environment variable that turns the journal off (`1`).
pub const NO_JOURNAL_ENV: &str = "CHOPSTICKS_NO_JOURNAL";

/// Words that make a flag's value secret: `--db-password X`,
/// `--token=X` are written `--db-password (secret)`.
const SECRET_WORDS: [&str; 6] = ["password", "passwd", "secret", "token", "apikey", "api-key"];

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
    /// Each host's steps, in the order they ran.
    pub steps: Vec<Step>,
    /// When it started, for [`end`](Run::end).
    #[serde(skip)]
    started: Option<SystemTime>,
}

/// One step on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The host.
    pub host: String,
    /// The step (`motd`, `deploy/config`).
    pub step: String,
    /// `ok`, `changed`, `failed`, `unreachable`, `interrupted` or
    /// `skipped` (not run: the run stopped before its batch).
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
        }
    }

    /// With its diff (cut at [`MAX_DIFF`]).
    pub fn diff(mut self, diff: Option<&str>) -> Step {
        self.diff = diff.map(|d| cut(d, MAX_DIFF));
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
    /// A run that starts now: this tool, these arguments (secret-looking
    /// flags' values masked: a flag whose name holds `password`,
    /// `passwd`, `secret`, `token` or `api-key`), the user (see
    /// [`Run::user`]).
    pub fn new<S: AsRef<str>>(tool: &str, args: impl IntoIterator<Item = S>) -> Run {
        let now = SystemTime::now();
        Run {
            tool: tool.to_owned(),
            args: masked(args),
            user: user(),
            start: utc(now),
            end: String::new(),
            seconds: 0.0,
            exit: 0,
            steps: Vec::new(),
            started: Some(now),
        }
    }

    /// Ends the run now with `exit`, and bounds its diffs together
    /// ([`MAX_RECORD_DIFFS`]).
    pub fn end(&mut self, exit: i32) {
        let now = SystemTime::now();
        self.end = utc(now);
        self.exit = exit;
        if let Some(started) = self.started {
            self.seconds = now
                .duration_since(started)
                .unwrap_or_default()
                .as_secs_f64();
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

/// `args` with the values of secret-looking flags replaced by `(secret)`.
fn masked<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Vec<String> {
    let secret = |flag: &str| {
        let flag = flag.trim_start_matches('-').to_ascii_lowercase();
        SECRET_WORDS.iter().any(|w| flag.contains(w))
    };
    let mut out: Vec<String> = Vec::new();
    let mut next_secret = false;
    for arg in args {
        let arg = arg.as_ref();
        if next_secret {
            out.push("(secret)".to_owned());
            next_secret = false;
            continue;
        }
        match arg.split_once('=') {
            Some((flag, _)) if arg.starts_with("--") && secret(flag) => {
                out.push(format!("{flag}=(secret)"));
            }
            _ => {
                next_secret = arg.starts_with('-') && !arg.contains('=') && secret(arg);
                out.push(arg.to_owned());
            }
        }
    }
    out
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
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Whether the environment turns the journal off
/// (`CHOPSTICKS_NO_JOURNAL` set, and neither empty nor `0`).
pub fn off_by_env() -> bool {
    std::env::var_os(NO_JOURNAL_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A tool's journal: a directory holding `journal.jsonl` and the turned
/// ones.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    max: u64,
    keep: usize,
}

impl Journal {
    /// The journal in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            max: MAX_JOURNAL,
            keep: KEEP,
        }
    }

    /// `$XDG_STATE_HOME/chopsticks/TOOL` (an absolute `XDG_STATE_HOME`
    /// only, as the XDG spec says), else `~/.local/state/chopsticks/TOOL`.
    pub fn default_dir(tool: &str) -> Option<PathBuf> {
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
        Some(state.join("chopsticks").join(tool))
    }

    /// Turns the journal at `bytes` rather than [`MAX_JOURNAL`], keeping
    /// `keep` turned files rather than [`KEEP`].
    pub fn rotate_at(mut self, bytes: u64, keep: usize) -> Journal {
        self.max = bytes;
        self.keep = keep;
        self
    }

    /// The current journal file.
    pub fn path(&self) -> PathBuf {
        self.file(0)
    }

    /// The journal file `n` turns old (0 the current one).
    fn file(&self, n: usize) -> PathBuf {
        match n {
            0 => self.dir.join("journal.jsonl"),
            n => self.dir.join(format!("journal.{n}.jsonl")),
        }
    }

    /// Appends `run` as one line, turning the journal first when the line
    /// would take it past its size.
    ///
    /// # Errors
    /// The directory or the file cannot be made, opened or written; a
    /// link or a directory someone else owns on the way; a link or
    /// someone else's file at the journal.
    pub fn append(&self, run: &Run) -> io::Result<()> {
        let mut line = serde_json::to_vec(run).map_err(io::Error::other)?;
        line.push(b'\n');
        self.make_dir()?;
        for _ in 0..8 {
            let file = self.open()?;
            lock(&file)?;
            // Another run may have turned the journal while this one
            // waited for the lock: then append to the new one.
            let held = file.metadata()?;
            match fs::symlink_metadata(self.path()) {
                Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {}
                _ => continue,
            }
            if held.len() > 0 && held.len() + line.len() as u64 > self.max {
                self.turn()?;
                continue;
            }
            return (&file).write_all(&line);
        }
        Err(io::Error::other(
            "the journal kept being turned by other runs: not written",
        ))
    }

    /// Moves `journal.N` to `journal.N+1` (the oldest goes), the current
    /// one to `journal.1`.
    fn turn(&self) -> io::Result<()> {
        if self.keep == 0 {
            return fs::remove_file(self.path());
        }
        for n in (0..self.keep).rev() {
            match fs::rename(self.file(n), self.file(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Makes the directory (0700), refusing links and directories that
    /// someone else owns on the way to it.
    fn make_dir(&self) -> io::Result<()> {
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        let mut path = PathBuf::new();
        for part in self.dir.components() {
            path.push(part);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() && m.uid() != me && m.uid() != 0 => {
                    return Err(refused(&path, "is a link someone else owns"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&path)
                        .or_else(|e| match e.kind() {
                            io::ErrorKind::AlreadyExists => Ok(()),
                            _ => Err(e),
                        })?;
                }
                Err(e) => return Err(e),
            }
        }
        let m = fs::metadata(&self.dir)?;
        if m.uid() != me {
            return Err(refused(&self.dir, "is a directory someone else owns"));
        }
        Ok(())
    }

    /// Opens the current file for appending: 0600, never through a link,
    /// only the user's own.
    fn open(&self) -> io::Result<File> {
        let path = self.path();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let m = file.metadata()?;
        // SAFETY: getuid cannot fail.
        if !m.is_file() || m.uid() != unsafe { libc::getuid() } {
            return Err(refused(&path, "is not a file of this user's"));
        }
        Ok(file)
    }

    /// The newest `limit` runs, newest first; only those with steps on
    /// `host` when one is given. Lines that do not read as a run (a
    /// journal of another version, a damaged line) are passed over.
    ///
    /// # Errors
    /// A journal file that exists but cannot be read.
    pub fn runs(&self, host: Option<&str>, limit: usize) -> io::Result<Vec<Run>> {
        // A cheap test before parsing: the host's name as a step's.
        let needle = host.map(|h| format!("\"host\":{}", serde_json::Value::from(h)));
        let mut runs = Vec::new();
        for n in 0..=self.keep {
            if runs.len() >= limit {
                break;
            }
            let Some(text) = read_tail(&self.file(n))? else {
                continue;
            };
            for line in text.rsplit('\n').filter(|l| !l.is_empty()) {
                if needle.as_ref().is_some_and(|n| !line.contains(n.as_str())) {
                    continue;
                }
                if let Ok(run) = serde_json::from_str::<Run>(line) {
                    if host.is_none_or(|h| run.steps.iter().any(|s| s.host == h)) {
                        runs.push(run);
                        if runs.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        Ok(runs)
    }
}

/// The newest [`MAX_READ`] bytes of `path` from a line's start; `None`
/// when there is no such file.
fn read_tail(path: &Path) -> io::Result<Option<String>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let from = len.saturating_sub(MAX_READ);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity((len - from) as usize);
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    if from > 0 {
        let start = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..start);
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// An exclusive lock on `file`, waited for.
fn lock(file: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor this function borrows.
    match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} {why}: the journal is not written there (give --journal DIR, or --no-journal)",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cs-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn run(n: usize, host: &str) -> Run {
        let mut run = Run::new(
            "tool",
            ["-H".to_owned(), host.to_owned(), format!("--n={n}")],
        );
        run.steps
            .push(Step::new(host, "motd", "changed", &format!("run {n}")).diff(Some("-a\n+b\n")));
        run.end(0);
        run
    }

    #[test]
    fn runs_read_back_newest_first_across_turned_files() {
        let dir = scratch("turn");
        let journal = Journal::new(dir.join("state/tool")).rotate_at(1000, 2);
        for n in 0..20 {
            journal
                .append(&run(n, if n % 2 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir.join("state/tool")), 0o700);
        assert_eq!(mode(&journal.path()), 0o600);
        // Turned at 1000 bytes, two old files kept, the oldest runs gone.
        for n in 0..=2 {
            let len = fs::metadata(journal.file(n)).unwrap().len();
            assert!(len <= 1000, "{len}");
        }
        assert!(!journal.file(3).exists());
        let all = journal.runs(None, 100).unwrap();
        let numbers: Vec<usize> = all
            .iter()
            .map(|r| r.steps[0].summary[4..].parse().unwrap())
            .collect();
        let newest_first: Vec<usize> = (20 - all.len()..20).rev().collect();
        assert_eq!(numbers, newest_first);
        assert!(all.len() < 20 && all.len() >= 6, "{}", all.len());
        let on_a = journal.runs(Some("a"), 2).unwrap();
        let summaries: Vec<&str> = on_a.iter().map(|r| r.steps[0].summary.as_str()).collect();
        assert_eq!(summaries, ["run 18", "run 16"]);
        assert_eq!(on_a[0].steps[0].diff.as_deref(), Some("-a\n+b\n"));
        // A torn line is passed over.
        fs::OpenOptions::new()
            .append(true)
            .open(journal.path())
            .unwrap()
            .write_all(b"{\"tool\":\"to")
            .unwrap();
        assert_eq!(journal.runs(None, 1).unwrap()[0].steps[0].summary, "run 19");
        fs::remove_dir_all(dir).unwrap();
    }

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
        let args = masked([
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
        ]);
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
                "(secret)"
            ]
        );
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_millis(1_796_631_199_123)),
            "2026-12-07T08:13:19.123Z"
        );
    }

    #[test]
    fn links_and_other_peoples_files_are_refused() {
        let dir = scratch("links");
        fs::create_dir_all(dir.join("real")).unwrap();
        // A link of one's own on the way is followed.
        std::os::unix::fs::symlink(dir.join("real"), dir.join("mine")).unwrap();
        Journal::new(dir.join("mine/tool"))
            .append(&run(1, "a"))
            .unwrap();
        assert!(dir.join("real/tool/journal.jsonl").exists());
        // A link at the journal itself is not.
        let at = dir.join("at");
        fs::create_dir_all(&at).unwrap();
        std::os::unix::fs::symlink("/dev/null", at.join("journal.jsonl")).unwrap();
        let err = Journal::new(&at).append(&run(1, "a")).unwrap_err();
        assert!(err.raw_os_error() == Some(libc::ELOOP), "{err}");
        // Root's directory is someone else's (the tests do not run as root).
        if unsafe { libc::getuid() } != 0 {
            let err = Journal::new("/").append(&run(1, "a")).unwrap_err();
            assert!(err.to_string().contains("someone else owns"), "{err}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn history_shows_runs_and_a_hosts_changes() {
        let dir = scratch("history");
        let journal = Journal::new(&dir);
        assert!(crate::history::show(&journal, None, false)
            .unwrap()
            .starts_with("no run in"));
        for n in 0..3 {
            let mut r = run(n, "a");
            r.steps.push(Step::new("b", "motd", "ok", "in place"));
            r.steps
                .push(Step::new("c", "motd", "unreachable", "refused"));
            journal.append(&r).unwrap();
        }
        let text = crate::history::show(&journal, None, false).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].contains("ok=1 changed=1 failed=0 unreachable=1  tool -H a --n=2"),
            "{text}"
        );
        assert!(lines[2].ends_with("--n=0"), "{text}");
        let text = crate::history::show(&journal, Some("a"), true).unwrap();
        assert!(
            text.contains("  changed      motd: run 2\n      -a\n      +b\n"),
            "{text}"
        );
        let text = crate::history::show(&journal, Some("b"), false).unwrap();
        assert!(
            text.contains("  ok           nothing changed (1 steps)"),
            "{text}"
        );
        assert!(crate::history::show(&journal, Some("z"), false)
            .unwrap()
            .starts_with("no run on z"));
        fs::remove_dir_all(dir).unwrap();
    }
}
