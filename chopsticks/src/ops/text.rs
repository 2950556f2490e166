//! What the operations that edit a text file in place share ([`line`],
//! [`block`]): the file, read without following a link unless asked;
//! anchors; regexes within their bounds; and the plan that writes the
//! edited text back with the file's mode and owner.
//!
//! [`line`]: super::line
//! [`block`]: super::block

use std::path::{Path, PathBuf};

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::landing::Landing;
use super::{diff, OpError, Owner, Plan};
use crate::files::{self, describe, Entry, Kind};

/// Where an edit goes when what it looks for is not in the file: the
/// beginning, the end, or a line a regular expression matches (after it,
/// or before it). `"BOF"` and `"EOF"` convert to the first two, as in
/// Ansible's `insertafter`/`insertbefore`; any other text is a regex.
///
/// ```
/// use chopsticks::ops::Anchor;
///
/// assert_eq!(Anchor::from("EOF"), Anchor::Eof);
/// assert_eq!(Anchor::from(r"^\[main\]"), Anchor::Regex(r"^\[main\]".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Anchor {
    /// The beginning of the file.
    Bof,
    /// The end of the file.
    Eof,
    /// A line this regular expression matches.
    Regex(String),
}

impl From<&str> for Anchor {
    fn from(text: &str) -> Anchor {
        match text {
            "BOF" => Anchor::Bof,
            "EOF" => Anchor::Eof,
            regex => Anchor::Regex(regex.to_owned()),
        }
    }
}

impl From<String> for Anchor {
    fn from(text: String) -> Anchor {
        Anchor::from(text.as_str())
    }
}

/// The longest regex an edit takes, in bytes.
pub const MAX_REGEX: usize = 1024;

/// The most memory a regex may compile to: with the length, what bounds
/// the time a match over a big file takes (linear in the file, times this).
const REGEX_SIZE: usize = 256 << 10;

/// `pattern` compiled within [`MAX_REGEX`] and `REGEX_SIZE`.
pub(super) fn bounded_regex(pattern: &str) -> Result<Regex, String> {
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

/// Whether `re` matches `line` (with its line end) as Python's
/// `re.search` does, which Ansible's modules use: `$` also matches before
/// the line's final `\n`.
pub(super) fn matches(re: &Regex, line: &str) -> bool {
    re.is_match(line.strip_suffix('\n').unwrap_or(line))
}

/// `line` without its line end (`\n`, `\r\n`, or a lone `\r`).
pub(super) fn bare(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The line end an edit writes: `\r\n` in a file most of whose lines end
/// so (where Ansible would write `\n`: see the README's list of
/// differences), else `\n`.
pub(super) fn eol_of(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    match crlf > text.matches('\n').count() - crlf {
        true => "\r\n",
        false => "\n",
    }
}

/// The text file `path` for `op`, within `max` bytes, never read through
/// a link (at `path` or on the way to it, as [`Found::read`] reads);
/// `None` when there is none.
///
/// # Errors
/// A link, a directory or something else than a file, a file larger than
/// `max` or not UTF-8 text, or one that cannot be read.
pub(super) fn read_bounded_text(
    op: &str,
    path: &Path,
    max: usize,
) -> Result<Option<String>, OpError> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let fail = |message: String| OpError::new(op, &shown, message);
    let entry = files::entry_at(path).map_err(|e| fail(describe(&e)))?;
    match entry.map(|e| e.kind) {
        None => return Ok(None),
        Some(Kind::Link) => {
            return Err(fail(format!(
                "is a symbolic link: {op} does not read through one; replace it with a file"
            )))
        }
        Some(Kind::Dir) => return Err(fail("is a directory".into())),
        Some(Kind::Other) => return Err(fail("is not a regular file".into())),
        Some(Kind::File) => {}
    }
    let (dir, name) = files::parent_and_name(path).map_err(|e| fail(describe(&e)))?;
    let mut bytes = Vec::new();
    dir.open_file(&name)
        .map_err(|e| fail(describe(&e)))?
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(describe(&e)))?;
    bounded_text(op, &shown, bytes, max).map(Some)
}

/// `bytes` (of what messages call `shown`) as text, within `max` bytes.
///
/// # Errors
/// More than `max` bytes, or not UTF-8.
pub(super) fn bounded_text(
    op: &str,
    shown: &str,
    bytes: Vec<u8>,
    max: usize,
) -> Result<String, OpError> {
    if bytes.len() > max {
        let most = match max % (1 << 20) {
            0 => format!("{} MiB", max >> 20),
            _ => format!("{max} bytes"),
        };
        return Err(OpError::new(
            op,
            shown,
            format!("is larger than {most}, the most {op} reads: trim it"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| OpError::new(op, shown, format!("is not UTF-8 text: {op} edits text")))
}

/// A text file as an edit found it.
pub(super) struct Found {
    /// The path edited (where a followed link points).
    pub path: PathBuf,
    /// How messages name it.
    pub shown: String,
    /// Its text; `None` when it does not exist.
    pub text: Option<String>,
    entry: Option<Entry>,
}

impl Found {
    /// Reads the text file `path` for `op`: a symbolic link there is
    /// refused unless `follow` (then what it points to is read); a missing
    /// file is `None`.
    ///
    /// # Errors
    /// A link without `follow`, a directory, a file that is not UTF-8
    /// text, or one that cannot be read.
    pub(super) fn read(op: &str, path: &Path, follow: bool) -> Result<Found, OpError> {
        let shown = path.display().to_string();
        let fail = |message: String| OpError::new(op, &shown, message);
        let path = match follow {
            true => files::follow_at(path).map_err(|e| fail(describe(&e)))?,
            false => path.to_owned(),
        };
        let entry = files::entry_at(&path).map_err(|e| fail(describe(&e)))?;
        match entry.map(|e| e.kind) {
            Some(Kind::Link) => {
                return Err(fail(format!(
                    "is a symbolic link: {op} does not replace a link with a file unasked \
                     (follow(true) edits the file it points to)"
                )))
            }
            Some(Kind::Dir) => return Err(fail("is a directory".into())),
            Some(Kind::Other) => return Err(fail("is not a regular file".into())),
            Some(Kind::File) | None => {}
        }
        let text = match entry {
            None => None,
            Some(_) => {
                let bytes = files::read_at(&path).map_err(|e| fail(describe(&e)))?;
                Some(
                    String::from_utf8(bytes)
                        .map_err(|_| fail(format!("is not UTF-8 text: {op} edits text files")))?,
                )
            }
        };
        Ok(Found {
            path,
            shown,
            text,
            entry,
        })
    }

    /// The plan that writes `new` over the file (a missing one is created
    /// with mode `0o644`, and its missing directories with `0o755`, as
    /// `lineinfile`'s `create` makes them; an existing one keeps its mode
    /// and owner), with its diff unless `secret`.
    ///
    /// # Errors
    /// A missing file whose path goes through something that is not a
    /// directory.
    pub(super) fn write(
        self,
        op: &str,
        mut summary: String,
        new: String,
        secret: bool,
        landing: &Landing,
    ) -> Result<Plan, OpError> {
        let dirs = match self.entry {
            Some(_) => Vec::new(),
            None => missing_dirs(&self.path).map_err(|e| OpError::new(op, &self.shown, e))?,
        };
        if let Some(top) = dirs.first() {
            summary.push_str(&format!(" (and the directory {})", top.display()));
        }
        summary.push_str(&landing.note(self.entry.is_some()));
        let old = self.text.unwrap_or_default();
        let diff = match secret {
            true => None,
            false => diff(&self.shown, old.as_bytes(), new.as_bytes()),
        };
        let (mode, owner) = match &self.entry {
            Some(e) => (e.mode, super::paths::owner_or_current(&Owner::default(), e)),
            None => (0o644, Owner::default()),
        };
        let path = self.path;
        let checking = landing.clone();
        let content = new.clone().into_bytes();
        let landing = landing.clone();
        let writing = op.to_owned();
        let plan = Plan::change(summary, diff, move |w| {
            for dir in &dirs {
                w.create_dir(dir, 0o755)?;
            }
            w.land(
                &writing,
                &path,
                new.as_bytes(),
                (mode, &owner),
                &landing,
                secret,
            )
        });
        Ok(checking.checked(plan, op, &self.shown, &content, secret))
    }
}

/// The directories above `path` that do not exist, outermost first.
///
/// # Errors
/// One of them is there but is not a directory, or cannot be looked at.
pub(super) fn missing_dirs(path: &Path) -> Result<Vec<PathBuf>, String> {
    let mut missing = Vec::new();
    let mut at = path.parent();
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        match files::entry_at(dir) {
            Ok(None) => missing.push(dir.to_owned()),
            // A link is the writer's to follow or refuse (its rule for
            // links on the way), as it is for the file's own directory.
            Ok(Some(e)) if e.kind == Kind::Dir || e.kind == Kind::Link => break,
            Ok(Some(_)) => return Err(format!("{} is not a directory", dir.display())),
            Err(e) => {
                return Err(format!(
                    "cannot look at {}: {}",
                    dir.display(),
                    describe(&e)
                ))
            }
        }
        at = dir.parent();
    }
    missing.reverse();
    Ok(missing)
}

/// `template` (a line of a regex match's replacement text, Python's
/// `match.expand`) with `\1`, `\g<1>` and `\g<name>` replaced by the groups
/// of `caps`, and `\\`, `\n`, `\t`, `\r` as escapes; a group that did not
/// take part is empty.
pub(super) fn expand(template: &str, caps: &regex_lite::Captures<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let group = |name: &str| -> Result<String, String> {
        let found = match name.parse::<usize>() {
            Ok(n) if n < caps.len() => caps.get(n),
            Ok(n) => return Err(format!("the regex has no group {n}")),
            Err(_) => caps.name(name),
        };
        Ok(found.map_or("", |m| m.as_str()).to_owned())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(d) if d.is_ascii_digit() => {
                let mut n = d.to_string();
                if let Some(&e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                    n.push(e);
                    chars.next();
                }
                out.push_str(&group(&n)?);
            }
            Some('g') if chars.peek() == Some(&'<') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                out.push_str(&group(&name)?);
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_links_directories_and_too_much() {
        let dir = std::env::temp_dir().join(format!("cs-text-bounded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "abc\n").unwrap();
        let read = |path: &Path, max| read_bounded_text("ops::x", path, max);
        assert_eq!(read(&file, 4).unwrap().as_deref(), Some("abc\n"));
        assert_eq!(read(&dir.join("none"), 4).unwrap(), None);
        let e = read(&file, 3).unwrap_err();
        assert!(
            e.message
                .contains("larger than 3 bytes, the most ops::x reads"),
            "{e}"
        );
        assert!(read(&dir, 4).unwrap_err().message.contains("directory"));
        let link = dir.join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link, 4)
            .unwrap_err()
            .message
            .contains("symbolic link"));
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(read(&file, 4).unwrap_err().message.contains("not UTF-8"));
        let e = bounded_text("ops::x", "f", vec![b'a'; 5 << 20], 4 << 20).unwrap_err();
        assert!(e.message.contains("larger than 4 MiB"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

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

    /// `create(true)` makes the missing directories, in check mode only
    /// says so, and goes through a link on the way that the user owns.
    #[test]
    fn create_makes_missing_directories_through_an_own_link() {
        use crate::ops::{Line, Mode};
        let dir = std::env::temp_dir().join(format!("cs-text-create-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("linked")).unwrap();
        let path = dir.join("linked/new/deeper/x.conf");
        let line = || Line::new(&path, "a = 1").create(true);
        let checked = line().plan().unwrap().run(Mode::Check).unwrap();
        assert!(checked.changed, "{checked:?}");
        assert!(checked.summary.contains("and the directory"), "{checked:?}");
        assert!(!dir.join("real/new").exists(), "check mode makes nothing");
        assert!(line().plan().unwrap().run(Mode::Apply).unwrap().changed);
        let text = std::fs::read_to_string(dir.join("real/new/deeper/x.conf")).unwrap();
        assert_eq!(text, "a = 1\n");
        assert!(!line().plan().unwrap().run(Mode::Apply).unwrap().changed);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn backreferences_expand_as_pythons_match_expand() {
        let re = Regex::new(r"^(?P<key>\w+)=(\d+)").unwrap();
        let caps = re.captures("port=80").unwrap();
        assert_eq!(expand(r"\1 = \2", &caps).unwrap(), "port = 80");
        assert_eq!(expand(r"\g<key>:\g<2>\t#", &caps).unwrap(), "port:80\t#");
        assert!(expand(r"\3", &caps).is_err());
        assert!(matches(&Regex::new("^a$").unwrap(), "a\n"));
        // A file's line end is the one most of its lines have.
        assert_eq!(eol_of("a\r\nb\r\nc\n"), "\r\n");
        assert_eq!(eol_of("a\nb\nc\r\n"), "\n");
        assert_eq!(eol_of(""), "\n");
        assert!(!matches(&Regex::new("^a$").unwrap(), "a\r\n"));
    }
}
