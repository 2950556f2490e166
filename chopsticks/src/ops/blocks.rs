//! [`block`]: a block of lines between two marker lines, present or
//! absent, as Ansible's `blockinfile` edits it (the same options, the same
//! decisions; proven side by side with ansible-core in
//! `tests/tests/ansible.rs`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::landing::{landing_options, Landing};
use super::text::{bare, bounded_regex, eol_of, matches, Anchor, Found};
use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::block";

/// Ansible's default marker, so that blocks it wrote are found.
const MARKER: &str = "# {mark} ANSIBLE MANAGED BLOCK";

/// A block of lines in a text file between a begin and an end marker
/// line, as Ansible's `blockinfile` describes it: present (replacing the
/// whole block when any line differs; inserted at the end, or where an
/// anchor says, when the markers are not there) or absent.
///
/// ```
/// use chopsticks::ops::Block;
///
/// let hosts = Block::new("/etc/hosts", "10.0.0.5 db1\n10.0.0.6 db2\n").marker("# {mark} db hosts");
/// let early = Block::new("/etc/profile", "umask 027\n").insert_before("BOF");
/// let gone = Block::new("/etc/hosts", "").marker("# {mark} db hosts").absent();
/// # let _ = (hosts, early, gone);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    path: PathBuf,
    block: String,
    marker: String,
    begin: String,
    end: String,
    after: Option<Anchor>,
    before: Option<Anchor>,
    absent: bool,
    create: bool,
    prepend_newline: bool,
    append_newline: bool,
    secret: bool,
    follow: bool,
    #[serde(default)]
    landing: Landing,
}

/// A secret block shows as its length only.
impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.secret {
            true => format!("({} bytes, secret)", self.block.len()),
            false => format!("{:?}", self.block),
        };
        f.debug_struct("Block")
            .field("path", &self.path)
            .field("block", &shown)
            .field("marker", &self.marker)
            .field("after", &self.after)
            .field("before", &self.before)
            .field("absent", &self.absent)
            .field("create", &self.create)
            .field("follow", &self.follow)
            .field("validate", &self.landing.validate)
            .field("backup", &self.landing.backup)
            .finish()
    }
}

impl Block {
    /// `block` (lines; a final newline is added when missing) must be in
    /// the file at `path` between the marker lines.
    pub fn new(path: impl Into<PathBuf>, lines: impl Into<String>) -> Block {
        Block {
            path: super::paths::plain(path.into()),
            block: lines.into(),
            marker: MARKER.to_owned(),
            begin: "BEGIN".to_owned(),
            end: "END".to_owned(),
            after: None,
            before: None,
            absent: false,
            create: false,
            prepend_newline: false,
            append_newline: false,
            secret: false,
            follow: false,
            landing: Landing::default(),
        }
    }

    /// The marker lines' template: `{mark}` becomes the begin or the end
    /// word (default `# {mark} ANSIBLE MANAGED BLOCK`, Ansible's, so that
    /// blocks it wrote are found). Give each block of a file its own.
    pub fn marker(mut self, template: impl Into<String>) -> Block {
        self.marker = template.into();
        self
    }

    /// The word of the begin marker (default `BEGIN`).
    pub fn marker_begin(mut self, word: impl Into<String>) -> Block {
        self.begin = word.into();
        self
    }

    /// The word of the end marker (default `END`).
    pub fn marker_end(mut self, word: impl Into<String>) -> Block {
        self.end = word.into();
        self
    }

    /// Where a block not in the file yet goes: after the last line `anchor`
    /// matches, or at the end (`"EOF"`, the default, also when no line
    /// matches) (`insertafter`).
    pub fn insert_after(mut self, anchor: impl Into<Anchor>) -> Block {
        (self.after, self.before) = (Some(anchor.into()), None);
        self
    }

    /// As [`insert_after`](Block::insert_after), before the line, or at
    /// the beginning (`"BOF"`) (`insertbefore`).
    pub fn insert_before(mut self, anchor: impl Into<Anchor>) -> Block {
        (self.before, self.after) = (Some(anchor.into()), None);
        self
    }

    /// A blank line before the block, unless it starts the file or one is
    /// there (`prepend_newline`).
    pub fn prepend_newline(mut self) -> Block {
        self.prepend_newline = true;
        self
    }

    /// A blank line after the block, unless it ends the file or one is
    /// there (`append_newline`).
    pub fn append_newline(mut self) -> Block {
        self.append_newline = true;
        self
    }

    /// The block and its markers must not be there.
    pub fn absent(mut self) -> Block {
        self.absent = true;
        self
    }

    /// A missing file is created (mode `0o644`) instead of being an error.
    pub fn create(mut self, create: bool) -> Block {
        self.create = create;
        self
    }

    /// The block is secret: a change shows as changed, never as a diff.
    pub fn secret(mut self) -> Block {
        self.secret = true;
        self
    }

    /// Whether a symbolic link at the path is followed (see
    /// [`Line::follow`](super::Line::follow)).
    pub fn follow(mut self, follow: bool) -> Block {
        self.follow = follow;
        self
    }

    /// What making the file so would change.
    ///
    /// # Errors
    /// A bad regex, a marker without `{mark}` or with a newline, a missing
    /// file (without [`create`](Block::create)), a file that is not text.
    pub fn plan(self) -> Result<Plan, OpError> {
        let shown = self.path.display().to_string();
        self.landing.check(OP, &shown)?;
        let fail = |message: String| OpError::new(OP, &shown, message);
        if self.marker.contains('\n') || self.begin.contains('\n') || self.end.contains('\n') {
            return Err(fail("a marker is one line: no newline in it".into()));
        }
        let found = Found::read(OP, &self.path, self.follow)?;
        let exists = found.text.is_some();
        if !exists && self.absent {
            return Ok(Plan::unchanged(format!(
                "{shown} is absent, and so is the block"
            )));
        }
        if !exists && !self.create {
            return Err(fail(
                "the file does not exist: create it first, or ask for it (`create(true)`)".into(),
            ));
        }
        let old = found.text.clone().unwrap_or_default();
        let new = self.edit(&old).map_err(fail)?;
        if exists && new == old {
            return Ok(Plan::unchanged(format!(
                "the block is as described in {shown}"
            )));
        }
        let summary = match (exists, self.absent || self.block.is_empty()) {
            (false, _) => format!("create {shown} with the block"),
            (true, true) => format!("{shown}: remove the block"),
            (true, false) => format!("{shown}: put the block in"),
        };
        found.write(OP, summary, new, self.secret, &self.landing)
    }

    /// `text` with the block in (or out), as `blockinfile` edits it.
    fn edit(&self, text: &str) -> Result<String, String> {
        let eol = eol_of(text);
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
        let mark = |word: &str| format!("{}{eol}", self.marker.replace("{mark}", word));
        let (begin, end) = (mark(&self.begin), mark(&self.end));
        let present = !self.absent;
        let block_lines: Vec<String> = match present && !self.block.is_empty() {
            true => {
                let mut body = self.block.clone();
                if !body.ends_with('\n') {
                    body.push_str(eol);
                }
                // In a CRLF file, the block's lines end as the file's do.
                let body = body
                    .split_inclusive('\n')
                    .map(|l| match l.strip_suffix('\n') {
                        Some(rest) if eol == "\r\n" && !rest.ends_with('\r') => {
                            format!("{rest}\r\n")
                        }
                        _ => l.to_owned(),
                    });
                std::iter::once(begin.clone())
                    .chain(body)
                    .chain(std::iter::once(end.clone()))
                    .collect()
            }
            false => Vec::new(),
        };
        let (after, before) = match (&self.after, &self.before) {
            (None, None) => (Some(&Anchor::Eof), None),
            (after, before) => (after.as_ref(), before.as_ref()),
        };
        let anchor = match after.or(before) {
            Some(Anchor::Regex(r)) => Some(bounded_regex(r)?),
            _ => None,
        };
        let (mut n0, mut n1) = (None, None);
        // A marker is a whole line, found whatever its line end (a file of
        // mixed ends); as in blockinfile, a last line without one is not.
        let is = |l: &str, marker: &str| l.ends_with('\n') && bare(l) == bare(marker);
        for (i, l) in lines.iter().enumerate() {
            if is(l, &begin) {
                n0 = Some(i);
            }
            if is(l, &end) {
                n1 = Some(i);
            }
        }
        let mut at = match (n0, n1) {
            (Some(n0), Some(n1)) if n0 < n1 => {
                lines.drain(n0..=n1);
                n0
            }
            (Some(n0), Some(n1)) => {
                lines.drain(n1..=n0);
                n1
            }
            _ => match (&anchor, after) {
                (Some(re), _) if re.as_str().starts_with("(?m)") || re.as_str().contains("(?m") => {
                    // A multiline regex is searched over the whole text.
                    match re.find(text) {
                        Some(m) if after.is_some() => text[..m.end()].matches('\n').count() + 1,
                        Some(m) => text[..m.start()].matches('\n').count(),
                        None => lines.len(),
                    }
                }
                (Some(re), _) => {
                    let last = lines.iter().rposition(|l| matches(re, l));
                    match last {
                        None => lines.len(),
                        Some(i) if after.is_some() => i + 1,
                        Some(i) => i,
                    }
                }
                (None, Some(_)) => lines.len(),
                (None, None) => 0,
            },
        };
        if at > 0 && !lines[at - 1].ends_with(eol) {
            lines[at - 1].push_str(eol);
        }
        if self.prepend_newline && present && at != 0 && lines[at - 1] != eol {
            lines.insert(at, eol.to_owned());
            at += 1;
        }
        let count = block_lines.len();
        lines.splice(at..at, block_lines);
        if self.append_newline && present {
            let next = at + count;
            if next < lines.len() && lines[next] != eol {
                lines.insert(next, eol.to_owned());
            }
        }
        Ok(lines.concat())
    }
}

landing_options!(Block);

/// Makes a block of a file as [`Block`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn block(spec: Block, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_goes_where_blockinfile_puts_it() {
        let b = |body: &str| Block::new("/f", body).marker("# {mark} X");
        assert_eq!(
            b("a\nb").edit("x\n").unwrap(),
            "x\n# BEGIN X\na\nb\n# END X\n"
        );
        let there = "x\n# BEGIN X\nold\n# END X\ny\n";
        assert_eq!(
            b("new\n").edit(there).unwrap(),
            "x\n# BEGIN X\nnew\n# END X\ny\n"
        );
        assert_eq!(b("").edit(there).unwrap(), "x\ny\n");
        assert_eq!(b("a").absent().edit(there).unwrap(), "x\ny\n");
        assert_eq!(
            b("a").insert_before("BOF").edit("x\n").unwrap(),
            "# BEGIN X\na\n# END X\nx\n"
        );
        assert_eq!(
            b("a").insert_after("^x").edit("x\ny\nx\nz").unwrap(),
            "x\ny\nx\n# BEGIN X\na\n# END X\nz"
        );
        assert_eq!(b("a").edit("x").unwrap(), "x\n# BEGIN X\na\n# END X\n");
        assert_eq!(
            b("a")
                .prepend_newline()
                .append_newline()
                .edit("x\ny\n")
                .unwrap(),
            "x\ny\n\n# BEGIN X\na\n# END X\n"
        );
        // Mixed line ends: the LF markers are found, the CRLF lines kept.
        let mixed = "u\n\nd\r\nd\r\n\n# BEGIN X\nd\r\n# END X\nu\n";
        assert_eq!(
            b("d\r\nd\r\n").edit(mixed).unwrap(),
            "u\n\nd\r\nd\r\n\n# BEGIN X\nd\r\nd\r\n# END X\nu\n"
        );
        // A marker is a whole line: one the file ends on without a newline is not.
        assert_eq!(
            b("a").edit("# BEGIN X\nold\n# END X").unwrap(),
            "# BEGIN X\nold\n# END X\n# BEGIN X\na\n# END X\n"
        );
    }
}
