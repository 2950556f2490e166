//! [`line`]: one line of a text file, present or absent, as Ansible's
//! `lineinfile` edits it (the same options, the same decisions; proven side
//! by side with ansible-core in `tests/tests/ansible.rs`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::landing::{landing_options, Landing};
use super::text::{bare, bounded_regex, eol_of, expand, matches, Anchor, Found};
use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::line";

/// Where the line goes when nothing it looks for is in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Insert {
    After(Anchor),
    Before(Anchor),
}

/// A line of a text file, as Ansible's `lineinfile` describes it: present
/// (replacing the last line a regex or a string matches, else inserted
/// where an anchor says, at the end by default) or absent.
///
/// ```
/// use chopsticks::ops::Line;
///
/// // Replaces the last line that sets PermitRootLogin, or appends it.
/// let sshd = Line::new("/etc/ssh/sshd_config", "PermitRootLogin no").matching(r"^#?PermitRootLogin\b");
/// // After the [main] section's header when the line is not there yet.
/// let dnf = Line::new("/etc/dnf/dnf.conf", "fastestmirror=True").insert_after(r"^\[main\]");
/// let gone = Line::new("/etc/hosts", "10.0.0.9 old-db").absent();
/// # let _ = (sshd, dnf, gone);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    path: PathBuf,
    line: String,
    regex: Option<String>,
    search: Option<String>,
    insert: Option<Insert>,
    first_match: bool,
    backrefs: bool,
    absent: bool,
    create: bool,
    secret: bool,
    follow: bool,
    #[serde(default)]
    landing: Landing,
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
            .field("search", &self.search)
            .field("insert", &self.insert)
            .field("first_match", &self.first_match)
            .field("backrefs", &self.backrefs)
            .field("absent", &self.absent)
            .field("create", &self.create)
            .field("follow", &self.follow)
            .field("validate", &self.landing.validate)
            .field("backup", &self.landing.backup)
            .finish()
    }
}

impl Line {
    /// `text`, one line without its newline, must be in the file at `path`
    /// (appended when nothing else says where).
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Line {
        Line {
            path: super::paths::plain(path.into()),
            line: text.into(),
            regex: None,
            search: None,
            insert: None,
            first_match: false,
            backrefs: false,
            absent: false,
            create: false,
            secret: false,
            follow: false,
            landing: Landing::default(),
        }
    }

    /// The line to replace is the last one `regex` matches (`lineinfile`'s
    /// `regexp`; the first with [`first_match`](Line::first_match)); when
    /// none does, the line is inserted as without it. With
    /// [`absent`](Line::absent), every line it matches goes.
    pub fn matching(mut self, regex: impl Into<String>) -> Line {
        self.regex = Some(regex.into());
        self
    }

    /// As [`matching`](Line::matching), with a plain string that the line
    /// contains (`search_string`).
    pub fn search_string(mut self, text: impl Into<String>) -> Line {
        self.search = Some(text.into());
        self
    }

    /// When nothing matches, the line goes after the last line `anchor`
    /// matches (or at the beginning or the end: `"BOF"`, `"EOF"`, the
    /// default); where no line matches it, at the end (`insertafter`).
    pub fn insert_after(mut self, anchor: impl Into<Anchor>) -> Line {
        self.insert = Some(Insert::After(anchor.into()));
        self
    }

    /// As [`insert_after`](Line::insert_after), before the line
    /// (`insertbefore`).
    pub fn insert_before(mut self, anchor: impl Into<Anchor>) -> Line {
        self.insert = Some(Insert::Before(anchor.into()));
        self
    }

    /// The first line the regex, string or anchor matches counts, not the
    /// last (`firstmatch`).
    pub fn first_match(mut self) -> Line {
        self.first_match = true;
        self
    }

    /// The line's `\1`, `\g<name>` ... take the regex's groups, and when the
    /// regex matches no line the file is left as it is (`backrefs`).
    pub fn backrefs(mut self) -> Line {
        self.backrefs = true;
        self
    }

    /// The line is secret (a token in an env file): a change shows as
    /// changed, never as a diff.
    pub fn secret(mut self) -> Line {
        self.secret = true;
        self
    }

    /// The line must not be there: every line equal to it (or matching the
    /// regex or containing the string) is removed.
    pub fn absent(mut self) -> Line {
        self.absent = true;
        self
    }

    /// A missing file is created (mode `0o644`) instead of being an error.
    pub fn create(mut self, create: bool) -> Line {
        self.create = create;
        self
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

    /// What making the file so would change.
    ///
    /// # Errors
    /// A bad regex, options `lineinfile` would not take together, a line
    /// with a newline, a missing file (without [`create`](Line::create)),
    /// a file that is not text.
    pub fn plan(self) -> Result<Plan, OpError> {
        let shown = self.path.display().to_string();
        self.landing.check(OP, &shown)?;
        let fail = |message: String| OpError::new(OP, &shown, message);
        if self.line.contains('\n') {
            return Err(fail(
                "the line contains a newline: describe one line".into(),
            ));
        }
        if self.regex.is_some() && self.search.is_some() {
            return Err(fail("give a regex or a search string, not both".into()));
        }
        if self.backrefs && self.regex.is_none() {
            return Err(fail(
                "backrefs() takes the groups of a regex: give matching(..)".into(),
            ));
        }
        let regex = match &self.regex {
            Some(r) => Some(bounded_regex(r).map_err(fail)?),
            None => None,
        };
        let found = Found::read(OP, &self.path, self.follow)?;
        let Some(text) = found.text.clone() else {
            if self.absent {
                return Ok(Plan::unchanged(format!(
                    "{shown} is absent, and so is the line"
                )));
            }
            if !self.create {
                return Err(fail(
                    "the file does not exist: create it first, or ask for it (`create(true)`)"
                        .into(),
                ));
            }
            let edit = self.present(&[], "\n", regex.as_ref()).map_err(fail)?;
            let summary = format!("create {shown} with the line");
            return Ok(match edit {
                Some(lines) => {
                    found.write(OP, summary, lines.concat(), self.secret, &self.landing)?
                }
                // backrefs without a match: nothing to write, not even the file.
                None => Plan::unchanged(format!("{shown} is absent; backrefs matched nothing")),
            });
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        if self.absent {
            let kept: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| !self.is_it(regex.as_ref(), l))
                .collect();
            let removed = lines.len() - kept.len();
            if removed == 0 {
                return Ok(Plan::unchanged(format!("the line is absent from {shown}")));
            }
            let summary = format!("{shown}: remove {removed} line(s)");
            return found.write(OP, summary, kept.concat(), self.secret, &self.landing);
        }
        let eol = eol_of(&text);
        let edit = self.present(&lines, eol, regex.as_ref()).map_err(fail)?;
        match edit {
            Some(new) if new.concat() != text => {
                let summary = format!("{shown}: put the line in");
                found.write(OP, summary, new.concat(), self.secret, &self.landing)
            }
            _ => Ok(Plan::unchanged(format!("the line is in {shown}"))),
        }
    }

    /// Whether `have` (a line with its line end) is one
    /// [`absent`](Line::absent) removes.
    fn is_it(&self, regex: Option<&regex_lite::Regex>, have: &str) -> bool {
        match (regex, &self.search) {
            (Some(re), _) => matches(re, have),
            (None, Some(s)) => have.contains(s.as_str()),
            (None, None) => bare(have) == self.line,
        }
    }

    /// The file's lines (each with its line end) with the line in, as
    /// `lineinfile` puts it in; `None` when backrefs found nothing to
    /// replace.
    fn present(
        &self,
        lines: &[&str],
        eol: &str,
        regex: Option<&regex_lite::Regex>,
    ) -> Result<Option<Vec<String>>, String> {
        let mut lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        let (after, before) = match &self.insert {
            None => (Some(&Anchor::Eof), None),
            Some(Insert::After(a)) => (Some(a), None),
            Some(Insert::Before(a)) => (None, Some(a)),
        };
        let anchor = match after.or(before) {
            Some(Anchor::Regex(r)) => Some(bounded_regex(r)?),
            _ => None,
        };
        // index[0]: the line the regex or string (or the line itself)
        // matched; index[1]: where the anchor says the line goes.
        let (mut found, mut at): (Option<usize>, Option<usize>) = (None, None);
        let mut groups: Option<regex_lite::Captures<'_>> = None;
        let owned: Vec<String> = lines.clone();
        if let Some(re) = regex {
            for (i, l) in owned.iter().enumerate() {
                if let Some(caps) = re.captures(l.strip_suffix('\n').unwrap_or(l)) {
                    (found, groups) = (Some(i), Some(caps));
                    if self.first_match {
                        break;
                    }
                }
            }
        }
        let mut searched = false;
        if let Some(s) = &self.search {
            for (i, l) in owned.iter().enumerate() {
                if l.contains(s.as_str()) {
                    (found, searched) = (Some(i), true);
                    if self.first_match {
                        break;
                    }
                }
            }
        }
        let matched = groups.is_some() || searched;
        if !matched {
            for (i, l) in owned.iter().enumerate() {
                if bare(l) == self.line {
                    found = Some(i);
                } else if anchor.as_ref().is_some_and(|re| matches(re, l)) {
                    at = Some(if after.is_some() { i + 1 } else { i });
                    if self.first_match {
                        break;
                    }
                }
            }
        }
        let with_eol = |l: &str| format!("{l}{eol}");
        let ends_open = |lines: &[String]| lines.last().is_some_and(|l| !l.ends_with(['\n', '\r']));
        if let Some(i) = found {
            let mut new = match (self.backrefs, &groups) {
                (true, Some(caps)) => expand(&self.line, caps)?,
                _ => self.line.clone(),
            };
            if !new.ends_with(eol) {
                new.push_str(eol);
            }
            // (lineinfile's branch for a line found by neither the regex,
            // the string nor itself cannot be reached: only they set it.)
            if lines[i] != new {
                lines[i] = new;
            }
            return Ok(Some(lines));
        }
        if self.backrefs {
            // No match to take the groups from: nothing is safe to write.
            return Ok(None);
        }
        match (after, before, at) {
            (Some(Anchor::Bof), _, _) | (_, Some(Anchor::Bof), _) => {
                lines.insert(0, with_eol(&self.line));
            }
            (Some(Anchor::Eof), _, _) | (_, _, None) => {
                if ends_open(&lines) {
                    lines.push(eol.to_owned());
                }
                lines.push(with_eol(&self.line));
            }
            (Some(_), _, Some(at)) => {
                if at == lines.len() {
                    if bare(&lines[at - 1]) != self.line {
                        lines.push(with_eol(&self.line));
                    }
                } else if bare(&lines[at]) != self.line {
                    lines.insert(at, with_eol(&self.line));
                }
            }
            (None, _, Some(at)) => lines.insert(at, with_eol(&self.line)),
        }
        Ok(Some(lines))
    }
}

landing_options!(Line);

/// Makes a line of a file as [`Line`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn line(spec: Line, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, spec: Line) -> Option<String> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let regex = spec.regex.as_ref().map(|r| bounded_regex(r).unwrap());
        spec.present(&lines, eol_of(text), regex.as_ref())
            .unwrap()
            .map(|l| l.concat())
    }

    #[test]
    fn a_line_goes_where_lineinfile_puts_it() {
        let l = |t: &str| Line::new("/f", t);
        assert_eq!(edit("a\nb\n", l("c")).unwrap(), "a\nb\nc\n");
        assert_eq!(edit("a\nb", l("c")).unwrap(), "a\nb\nc\n");
        assert_eq!(edit("a\nb\n", l("b")).unwrap(), "a\nb\n");
        assert_eq!(
            edit("x=1\nx=2\n", l("x=3").matching("^x=")).unwrap(),
            "x=1\nx=3\n"
        );
        let first = l("x=3").matching("^x=").first_match();
        assert_eq!(edit("x=1\nx=2\n", first).unwrap(), "x=3\nx=2\n");
        let after = l("new").insert_after("^a");
        assert_eq!(edit("a\nb\na\nc\n", after).unwrap(), "a\nb\na\nnew\nc\n");
        let before = l("new").insert_before("^b");
        assert_eq!(edit("a\nb\n", before).unwrap(), "a\nnew\nb\n");
        assert_eq!(
            edit("a\n", l("new").insert_before("BOF")).unwrap(),
            "new\na\n"
        );
        let refs = l(r"port=\1").matching(r"^#?port=(\d+)").backrefs();
        assert_eq!(edit("#port=80\n", refs.clone()).unwrap(), "port=80\n");
        assert_eq!(edit("nothing\n", refs), None);
        assert_eq!(edit("a\r\nb\r\n", l("c")).unwrap(), "a\r\nb\r\nc\r\n");
    }
}
