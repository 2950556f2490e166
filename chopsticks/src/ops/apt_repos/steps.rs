//! The files of an [`AptRepository`](super::AptRepository) as the plan
//! finds them, the steps that change them (and put them back), and the
//! refresh of its package lists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::deb822::MAX_KEY;
use super::OP;
use crate::files::{self, Entry, Kind};
use crate::ops::process::Program;
use crate::ops::tools::tail;
use crate::ops::{OpError, Owner, Writer};

/// The most of a `.sources` file read.
const MAX_SOURCES: usize = 1 << 20;

/// How long refreshing the package lists of one repository may take.
const UPDATE_TIME: Duration = Duration::from_secs(600);

/// How long apt waits for another package manager's lock: apt itself
/// for dpkg's, the refresh retried for that of the lists.
const LOCK_WAIT_SECS: u32 = 120;
const LOCK_WAIT: Duration = Duration::from_secs(LOCK_WAIT_SECS as u64);

/// How often the refresh is tried again while the lists are locked.
const LOCK_RETRY: Duration = Duration::from_secs(3);

/// How long looking up the repository's lists may take.
const READ_TIME: Duration = Duration::from_secs(60);

/// A file of the repository as the plan found it: its content (within
/// [`MAX_SOURCES`] or [`MAX_KEY`]) and what it is.
pub(super) struct Found {
    pub path: PathBuf,
    pub entry: Option<Entry>,
    pub content: Option<Vec<u8>>,
}

impl Found {
    /// What is at `path`, without reading it.
    pub fn look(path: &Path) -> Result<Found, OpError> {
        let entry = files::entry_at(path)
            .map_err(|e| OpError::new(OP, path.display(), files::describe(&e)))?;
        Ok(Found {
            path: path.to_owned(),
            entry,
            content: None,
        })
    }

    /// The file `path`: a link, a directory or a file larger than the
    /// most this operation reads is refused.
    pub fn read(path: &Path) -> Result<Found, OpError> {
        use std::io::Read as _;
        let mut found = Found::look(path)?;
        let fail = |message: String| OpError::new(OP, path.display(), message);
        let Some(entry) = &found.entry else {
            return Ok(found);
        };
        if entry.kind != Kind::File {
            return Err(fail(format!(
                "is not a regular file (a link, a directory ...): {OP} writes files of its own \
                 there; remove it"
            )));
        }
        let (dir, name) = files::parent_and_name(path).map_err(|e| fail(files::describe(&e)))?;
        let max = MAX_SOURCES.max(MAX_KEY);
        let mut bytes = Vec::new();
        dir.open_file(&name)
            .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(files::describe(&e)))?;
        if bytes.len() > max {
            return Err(fail(format!(
                "is larger than {} MiB, more than {OP} reads: it is not one of its files; \
                 remove it",
                max >> 20
            )));
        }
        found.content = Some(bytes);
        Ok(found)
    }

    /// The step that makes the file hold `content` with mode 0644, owned
    /// by root, if it does not; `foreign`: it was not written by this
    /// operation.
    pub fn holding(self, content: Vec<u8>, foreign: bool) -> Option<Step> {
        let shown = self.path.display().to_string();
        let (line, write) = match (&self.content, &self.entry) {
            (Some(old), Some(e)) if *old == content => {
                let mut fixes = Vec::new();
                if e.mode & 0o7777 != 0o644 {
                    fixes.push(format!("mode {:04o} -> 0644", e.mode & 0o7777));
                }
                if (e.uid, e.gid) != (0, 0) {
                    fixes.push(format!("owner {}:{} -> 0:0", e.uid, e.gid));
                }
                if fixes.is_empty() {
                    return None;
                }
                (format!("{shown}: {}", fixes.join(", ")), false)
            }
            (Some(_), _) if foreign => (
                format!("replace {shown} (a file not written by {OP})"),
                true,
            ),
            (Some(_), _) => (format!("update {shown}"), true),
            (None, _) => (format!("create {shown}"), true),
        };
        Some(Step {
            line,
            found: self,
            write: write.then_some(content),
            remove: false,
        })
    }
}

/// One file's change: written (`write`), removed, or given mode 0644 and
/// owner root.
pub(super) struct Step {
    pub line: String,
    pub found: Found,
    write: Option<Vec<u8>>,
    remove: bool,
}

/// root:root, the owner of every file this operation writes.
fn root() -> Owner {
    Owner {
        user: Some("0".into()),
        group: Some("0".into()),
    }
}

impl Step {
    pub fn remove(found: Found) -> Step {
        Step {
            line: format!("remove {}", found.path.display()),
            found,
            write: None,
            remove: true,
        }
    }

    fn run(&self, w: &Writer) -> Result<(), OpError> {
        let path = &self.found.path;
        match (&self.write, self.remove) {
            (_, true) => w.remove_file(path),
            (Some(content), _) => w.write_file(path, content, 0o644, &root()),
            (None, _) => {
                w.set_mode(path, 0o644)?;
                w.set_owner(path, &root())
            }
        }
    }

    /// Puts the file back as the plan found it.
    fn undo(&self, w: &Writer) -> Result<(), OpError> {
        let found = &self.found;
        match (&found.content, &found.entry) {
            (Some(old), Some(e)) => {
                let owner = Owner {
                    user: Some(e.uid.to_string()),
                    group: Some(e.gid.to_string()),
                };
                w.write_file(&found.path, old, e.mode & 0o7777, &owner)
            }
            _ => match files::entry_at(&found.path) {
                Ok(Some(_)) => w.remove_file(&found.path),
                _ => Ok(()),
            },
        }
    }
}

/// Whether apt knows package lists (`Packages`, `Sources`) of the
/// repository `sources`: `apt-get indextargets` lists only the targets
/// whose files are there. None after a run cut short before its refresh,
/// or lists removed since.
///
/// # Errors
/// `apt-get indextargets` cannot be run or fails.
pub(super) fn lists_known(apt_get: &Path, target: &str, sources: &Path) -> Result<bool, OpError> {
    let mut argv = vec![apt_get.display().to_string(), "indextargets".into()];
    for option in [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=-".into(),
    ] {
        argv.push("-o".into());
        argv.push(option);
    }
    argv.extend(["--format".into(), "$(CREATED_BY)".into()]);
    let env = [("LC_ALL".to_owned(), "C".to_owned())];
    let shown = "apt-get indextargets (of this repository only)";
    let program = Program {
        argv: &argv,
        env: &env,
        cwd: None,
        shown,
        timeout: Some(READ_TIME),
    };
    let out = program.output(OP)?;
    if out.status != 0 {
        return Err(OpError::new(
            OP,
            target,
            format!(
                "{shown} exited with status {}: {}; check that apt works on this host",
                out.status,
                tail(&out, 3)
            ),
        ));
    }
    Ok(out
        .stdout
        .lines()
        .any(|l| ["Packages", "Sources"].contains(&l.trim())))
}

/// `apt-get update` of the repository `sources` only: the other sources'
/// lists kept, a list apt cannot fetch an error.
pub(super) fn refresh_argv(apt_get: &Path, sources: &Path) -> Vec<String> {
    let mut argv = vec![apt_get.display().to_string(), "update".into(), "-q".into()];
    for option in [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=-".into(),
        "APT::Get::List-Cleanup=0".into(),
        "APT::Update::Error-Mode=any".into(),
        format!("DPkg::Lock::Timeout={LOCK_WAIT_SECS}"),
    ] {
        argv.push("-o".into());
        argv.push(option);
    }
    argv
}

/// Makes `steps`, then refreshes the repository's package lists; when a
/// step or the refresh fails, puts back every file as it was.
pub(super) fn apply(
    w: &Writer,
    target: &str,
    steps: &[Step],
    refresh: &[String],
) -> Result<(), OpError> {
    let mut done = 0;
    let result = steps
        .iter()
        .try_for_each(|s| {
            done += 1;
            s.run(w)
        })
        .and_then(|()| update(w, target, refresh));
    let Err(mut error) = result else {
        return Ok(());
    };
    let failed: Vec<String> = steps[..done]
        .iter()
        .rev()
        .filter_map(|s| s.undo(w).err())
        .map(|e| e.to_string())
        .collect();
    match failed.is_empty() {
        true if done > 0 => error
            .message
            .push_str("; the repository's files are put back as they were"),
        true => {}
        false => error.message.push_str(&format!(
            "; putting back the repository's files as they were failed too: {}",
            failed.join("; ")
        )),
    }
    Err(error)
}

/// Runs the refresh; its failure quotes apt's last lines and says what to
/// do.
fn update(w: &Writer, target: &str, argv: &[String]) -> Result<(), OpError> {
    let env = [
        ("LC_ALL".to_owned(), "C".to_owned()),
        ("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned()),
    ];
    let shown = "apt-get update (of this repository only)";
    let program = Program {
        argv,
        env: &env,
        cwd: None,
        shown,
        timeout: Some(UPDATE_TIME),
    };
    // DPkg::Lock::Timeout covers dpkg's lock, not that of the lists.
    let start = std::time::Instant::now();
    let out = loop {
        let left = UPDATE_TIME.saturating_sub(start.elapsed());
        let out = w.exec(
            Program {
                timeout: Some(left),
                ..program
            },
            OP,
        )?;
        let locked = out.status != 0
            && out
                .stderr
                .contains("Could not get lock /var/lib/apt/lists/lock");
        if !locked || start.elapsed() + LOCK_RETRY > LOCK_WAIT {
            break out;
        }
        std::thread::sleep(LOCK_RETRY);
    };
    if out.status == 0 {
        return Ok(());
    }
    let said = format!("{}\n{}", out.stdout, out.stderr);
    let advice = if [
        "NO_PUBKEY",
        "couldn't be verified",
        "is not signed",
        "BADSIG",
        "EXPKEYSIG",
    ]
    .iter()
    .any(|s| said.contains(s))
    {
        "the key did not sign this repository: give the key its vendor signs it with"
    } else if said.contains("Could not get lock") {
        "another package manager holds the lock (a second run, unattended upgrades): try again \
         when it is done"
    } else if said.contains("are you root") || said.contains("Permission denied") {
        "adding a repository needs root: connect as root or through sudo (TunnelBuilder::sudo)"
    } else {
        "check the URIs and suites (a flat repository's suite ends in /) and that this host \
         reaches them"
    };
    let mut quoted = tail(&out, 3);
    if let Some((at, _)) = quoted.char_indices().nth(600) {
        quoted.truncate(at);
        quoted.push_str("...");
    }
    Err(OpError::new(
        OP,
        target,
        format!(
            "{shown} exited with status {}: {quoted}; {advice}",
            out.status
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refresh reads this repository's file alone, keeps the other
    /// lists, and fails when a list cannot be fetched.
    #[test]
    fn the_refresh_is_of_this_repository_only() {
        let argv = refresh_argv(
            Path::new("/usr/bin/apt-get"),
            Path::new("/etc/apt/sources.list.d/x.sources"),
        );
        assert_eq!(
            argv.join(" "),
            "/usr/bin/apt-get update -q -o Dir::Etc::SourceList=/etc/apt/sources.list.d/x.sources \
             -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=0 \
             -o APT::Update::Error-Mode=any -o DPkg::Lock::Timeout=120"
        );
    }
}
