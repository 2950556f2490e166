//! [`line`]: one line of a text file, present once or absent.

use std::path::PathBuf;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::{diff, Change, Mode, OpError, Owner, Plan};
use crate::files::{self, describe, Kind};
use crate::remote;

const OP: &str = "ops::line";

/// A line of a text file: present exactly once, located by a regular
/// expression (or by the line itself), or absent.
///
/// ```
/// use chopsticks::ops::Line;
///
/// // Replaces the line that sets PermitRootLogin, or appends it: never twice.
/// let sshd = Line::new("/etc/ssh/sshd_config", "PermitRootLogin no").matching(r"^#?PermitRootLogin\b");
/// let gone = Line::new("/etc/hosts", "10.0.0.9 old-db").absent();
/// # let _ = (sshd, gone);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    path: PathBuf,
    line: String,
    regex: Option<String>,
    absent: bool,
    create: bool,
    secret: bool,
    #[serde(default)]
    follow: bool,
}

/// A secret line shows as its length only.
impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.secret {
            true => format!("({} bytes, secret)", self.line.len()),
            false => format!("{:?}", self.line),
        };
        f.debug_struct("Line")
            .field("path", &self.path)
            .field("line", &shown)
            .field("regex", &self.regex)
            .field("absent", &self.absent)
            .field("create", &self.create)
            .field("follow", &self.follow)
            .finish()
    }
}

impl Line {
    /// `text`, one line without its newline, must be in the file at `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Line {
        Line {
            path: super::paths::plain(path.into()),
            line: text.into(),
            regex: None,
            absent: false,
            create: false,
            secret: false,
            follow: false,
        }
    }

    /// Whether a symbolic link at the path is followed: `false` (the
    /// default) refuses a link rather than replace it with a file (think
    /// `/etc/resolv.conf`); `true` edits the file it points to (through a
    /// chain of links too, each followed only when root or this program's
    /// user owns it).
    pub fn follow(mut self, follow: bool) -> Line {
        self.follow = follow;
        self
    }

    /// The line is secret (a token in an env file): a change shows as
    /// changed, never as a diff.
    pub fn secret(mut self) -> Line {
        self.secret = true;
        self
    }

    /// The line to replace is the last one `regex` matches (syntax of the
    /// `regex` crate); without a match, the line is appended. Other lines
    /// it matches are left alone, unless the line is
    /// [`absent`](Line::absent): then every match goes.
    pub fn matching(mut self, regex: impl Into<String>) -> Line {
        self.regex = Some(regex.into());
        self
    }

    /// The line must not be there: every line equal to it (or matching the
    /// regex) is removed.
    pub fn absent(mut self) -> Line {
        self.absent = true;
        self
    }

    /// A missing file is created (mode `0o644`) instead of being an error.
    pub fn create(mut self, create: bool) -> Line {
        self.create = create;
        self
    }

    /// What making the file so would change.
    ///
    /// # Errors
    /// A bad regex, a line with a newline, a missing file (without
    /// [`create`](Line::create)), a file that is not text.
    pub fn plan(self) -> Result<Plan, OpError> {
        let path = self.path;
        let shown = path.display().to_string();
        let fail = |message: String| OpError::new(OP, &shown, message);
        if self.line.contains('\n') {
            return Err(fail(
                "the line contains a newline: describe one line".into(),
            ));
        }
        let regex = match &self.regex {
            Some(r) => Some(bounded_regex(r).map_err(fail)?),
            None => None,
        };
        let is_it = |l: &str| match &regex {
            Some(re) => re.is_match(l),
            None => l == self.line,
        };
        let path = match self.follow {
            true => files::follow_at(&path).map_err(|e| fail(describe(&e)))?,
            false => path,
        };
        let entry = files::entry_at(&path).map_err(|e| fail(describe(&e)))?;
        if entry.is_some_and(|e| e.kind == Kind::Link) {
            return Err(fail(
                "is a symbolic link: ops::line does not replace a link with a file unasked \
                 (follow(true) edits the file it points to)"
                    .into(),
            ));
        }
        let (old, meta) = match files::read_at(&path) {
            Ok(old) => (old, entry),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && (self.create || self.absent) => {
                (Vec::new(), None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(
                    "the file does not exist: create it first, or ask for it (`create(true)`)"
                        .into(),
                ))
            }
            Err(e) => return Err(fail(describe(&e))),
        };
        let text = String::from_utf8(old.clone())
            .map_err(|_| fail("is not UTF-8 text: ops::line edits text files".into()))?;
        let mut lines: Vec<&str> = text.lines().collect();
        let modified = if self.absent {
            let before = lines.len();
            lines.retain(|l| !is_it(l));
            lines.len() != before
        } else if lines.contains(&self.line.as_str()) {
            false
        } else {
            match lines.iter().rposition(|l| is_it(l)) {
                Some(at) => lines[at] = &self.line,
                None => lines.push(&self.line),
            }
            true
        };
        if !modified {
            let state = if self.absent { "absent from" } else { "in" };
            return Ok(Plan::unchanged(format!("the line is {state} {shown}")));
        }
        // A file with CRLF line ends keeps them.
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let mut new = lines.join(eol);
        if !lines.is_empty() {
            new.push_str(eol);
        }
        let diff = match self.secret {
            true => None,
            false => diff(&shown, &old, new.as_bytes()),
        };
        let summary = match (self.absent, &meta) {
            (true, _) => format!("{shown}: remove the line"),
            (false, None) => format!("create {shown} with the line"),
            (false, Some(_)) => format!("{shown}: put the line in"),
        };
        let (mode, owner) = match &meta {
            Some(m) => (m.mode, super::paths::owner_or_current(&Owner::default(), m)),
            None => (0o644, Owner::default()),
        };
        Ok(Plan::change(summary, diff, move |w| {
            w.write_file(&path, new.as_bytes(), mode, &owner)
        }))
    }
}

/// Makes a line of a file as [`Line`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn line(spec: Line, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// The longest regex [`Line`] takes, in bytes.
pub const MAX_REGEX: usize = 1024;

/// The most memory a regex may compile to: with the length, what bounds
/// the time a match over a big file takes (linear in the file, times this).
const REGEX_SIZE: usize = 256 << 10;

/// `pattern` compiled within [`MAX_REGEX`] and `REGEX_SIZE`.
fn bounded_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX {
        return Err(format!(
            "the regex is {} bytes long, more than the {MAX_REGEX} a line's regex may be",
            pattern.len()
        ));
    }
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| match e.to_string() {
            e if e.contains("size limit") => format!(
                "the regex {pattern:?} compiles to more than {} KiB, the most a line's regex \
                 may: make it simpler",
                REGEX_SIZE >> 10
            ),
            e => format!("bad regex {pattern:?}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_bounded_in_length_and_in_size() {
        assert!(bounded_regex("^PermitRootLogin").is_ok());
        let long = "a".repeat(MAX_REGEX + 1);
        let err = bounded_regex(&long).unwrap_err();
        assert!(err.contains("more than the 1024"), "{err}");
        // Short, but it compiles to megabytes.
        let err = bounded_regex("(?:a{1000}){1000}").unwrap_err();
        assert!(err.contains("more than 256 KiB"), "{err}");
        let err = bounded_regex("(").unwrap_err();
        assert!(err.starts_with("bad regex"), "{err}");
    }
}
