//! The journal's files: appended to under a lock, turned at a size, read
//! back newest first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Run, KEEP, MAX_JOURNAL};

/// The most of one journal file `--history` reads (its newest part).
const MAX_READ: u64 = 4 * MAX_JOURNAL;

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
        Some(state_home()?.join("chopsticks").join(tool))
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
        let mut line = run.line()?;
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
            // A run killed while writing left a torn last line: end it,
            // so that this record starts a line of its own.
            let mut last = [0u8; 1];
            if held.len() > 0 && file.read_at(&mut last, held.len() - 1)? == 1 && last[0] != b'\n' {
                line.insert(0, b'\n');
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

    /// Makes the directory (see [`private_dir`]).
    fn make_dir(&self) -> io::Result<()> {
        private_dir(&self.dir)
    }

    /// Opens the current file for appending: 0600, never through a link,
    /// only the user's own.
    fn open(&self) -> io::Result<File> {
        let path = self.path();
        let file = OpenOptions::new()
            .read(true)
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
        if m.mode() & 0o777 != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
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
        self.runs_where(host, limit, |_| true)
    }

    /// [`runs`](Journal::runs), only those `keep` keeps (it sees each run
    /// on `host`, newest first, until `limit` are kept).
    ///
    /// # Errors
    /// A journal file that exists but cannot be read.
    pub fn runs_where(
        &self,
        host: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&Run) -> bool,
    ) -> io::Result<Vec<Run>> {
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
                    if host.is_none_or(|h| run.steps.iter().any(|s| s.host == h)) && keep(&run) {
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

/// Makes the directory `dir` (0700), refusing links and directories that
/// someone else owns on the way to it.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    let mut path = PathBuf::new();
    for part in dir.components() {
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
    let m = fs::metadata(dir)?;
    if m.uid() != me {
        return Err(refused(dir, "is a directory someone else owns"));
    }
    // A directory of the user's made before, or by hand: 0700 too.
    if m.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `$XDG_STATE_HOME` (an absolute one only, as the XDG spec says), else
/// `~/.local/state`: where the kit keeps its state.
pub(crate) fn state_home() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Step;

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
        // The next record does not glue onto it: it reads back.
        journal.append(&run(20, "a")).unwrap();
        let runs = journal.runs(None, 2).unwrap();
        assert_eq!(runs[0].steps[0].summary, "run 20");
        assert_eq!(runs[1].steps[0].summary, "run 19");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn modes_of_existing_files_are_made_private() {
        let dir = scratch("modes");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let journal = Journal::new(&dir);
        fs::write(journal.path(), "").unwrap();
        fs::set_permissions(journal.path(), fs::Permissions::from_mode(0o644)).unwrap();
        journal.append(&run(1, "a")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&journal.path()), 0o600);
        assert_eq!(journal.runs(None, 5).unwrap().len(), 1);
        fs::remove_dir_all(dir).unwrap();
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
        // Runs that changed nothing on b are counted, not shown.
        let text = crate::history::show(&journal, Some("b"), false).unwrap();
        assert_eq!(
            text,
            "(3 more runs on b found nothing to change: not shown)\n"
        );
        // A check run's changes would have been made.
        let mut check = run(3, "a");
        check.check = true;
        journal.append(&check).unwrap();
        let text = crate::history::show(&journal, Some("a"), false).unwrap();
        assert!(text.contains("  would change  motd: run 3"), "{text}");
        let text = crate::history::show(&journal, None, false).unwrap();
        assert!(text.contains("ok=0 would change=1 failed=0"), "{text}");
        assert!(crate::history::show(&journal, Some("z"), false)
            .unwrap()
            .starts_with("no run on z"));
        fs::remove_dir_all(dir).unwrap();
    }
}
