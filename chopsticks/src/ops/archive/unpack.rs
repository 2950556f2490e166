//! Apply's pass over the archive the plan read: the entries that differ
//! written through the [`Writer`], each relative to its directory held
//! open (a link on the way is refused, never followed); the checks of
//! the plan made again, in case the archive changed since.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::read::{self, Kind};
use super::scan::{in_dest, mode_of, Scanned};
use super::tree::{clean, Made, Tree};
use super::{Unarchive, OP, TOO_LARGE};
use crate::files::{self, describe, Dir, Kind as Found, Ownership};
use crate::ops::{OpError, Writer};

/// What the pass keeps.
struct Unpack<'a> {
    w: &'a Writer,
    spec: &'a Unarchive,
    root: Dir,
    ids: Ownership,
    writes: &'a HashSet<u64>,
    entries: u64,
    bytes: u64,
    /// What the entries so far make: the plan's checks made again.
    tree: Tree<()>,
    /// Directories made, and the modes they get once filled.
    made: HashMap<PathBuf, u32>,
}

/// Writes what the plan found to differ.
///
/// # Errors
/// When a write fails, or the archive changed into one that is refused
/// (what was written before stays).
pub(super) fn unpack(w: &Writer, spec: &Unarchive, scanned: Scanned) -> Result<(), OpError> {
    let root = files::resolve_dir(&spec.dest).map_err(|e| spec.fail(describe(&e)))?;
    let ids = spec.owner.ids(OP, &spec.dest)?;
    let mut pass = Unpack {
        w,
        spec,
        root,
        ids,
        writes: &scanned.writes,
        entries: 0,
        bytes: 0,
        tree: Tree::new(spec.max_entries),
        made: HashMap::new(),
    };
    read::entries(
        &scanned.file,
        scanned.format,
        spec.max_bytes,
        spec.max_entries,
        &mut |item, content| pass.entry(item, content),
    )
    .map_err(|e| spec.fail(format!("unpacking {}: {e}", spec.shown_archive())))?;
    // Deepest first, so that a directory without write permission for its
    // owner is closed only once what goes in it is there.
    let mut made: Vec<(PathBuf, u32)> = pass.made.drain().collect();
    made.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, mode) in made {
        let dir = pass.open(&rel, false).map_err(|e| spec.fail(e))?;
        w.dir_mode(&dir, mode)?;
    }
    let _ = pass.root.sync();
    Ok(())
}

impl Unpack<'_> {
    fn entry(&mut self, item: read::Item, content: &mut dyn Read) -> Result<(), String> {
        let index = self.entries;
        self.entries += 1;
        if self.entries > self.spec.max_entries {
            return Err(format!("more than {} entries", self.spec.max_entries));
        }
        let Some(rel) = clean(&item.path)? else {
            return Ok(());
        };
        let (made, mode) = match &item.kind {
            Kind::Special => return Err(format!("{} is a special file", rel.display())),
            Kind::Dir => (Made::Dir, mode_of(item.mode)),
            Kind::Symlink(_) => (Made::Link, mode_of(item.mode)),
            Kind::File => (Made::File, mode_of(item.mode)),
            // The mode of the file it links to, as the plan compared it.
            Kind::Hardlink(to) => {
                let to = clean(to)?.unwrap_or_default();
                (Made::File, self.tree.link_to(&rel, &to)?.1)
            }
        };
        self.tree.add(&rel, made, mode)?;
        if !self.writes.contains(&index) {
            return Ok(());
        }
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => Some(self.open(p, true)?),
            _ => None,
        };
        let dir = parent.as_ref().unwrap_or(&self.root);
        let name = rel.file_name().unwrap_or_default();
        let fail = |e: OpError| e.message;
        match item.kind {
            Kind::Special => return Err(format!("{} is a special file", rel.display())),
            Kind::Dir => {
                match dir.entry(name).map_err(|e| describe(&e))?.map(|e| e.kind) {
                    None => drop(self.w.dir_in(dir, name, self.ids).map_err(fail)?),
                    Some(Found::Dir) => {}
                    Some(_) => return Err(format!("{} is not a directory", rel.display())),
                }
                self.made.insert(rel, mode);
            }
            Kind::Symlink(target) => self.w.link_in(dir, name, &target, self.ids).map_err(fail)?,
            Kind::File => {
                let held = Arc::new(self.reopen(parent)?);
                let (bytes, max) = (&mut self.bytes, self.spec.max_bytes);
                self.w
                    .file_in(&held, name, mode, self.ids, |file| {
                        copy(content, file, bytes, max).map_err(|e| OpError::new(OP, "", e))
                    })
                    .map_err(fail)?;
            }
            Kind::Hardlink(to) => {
                let to = clean(&to)?.unwrap_or_default();
                let Some((Found::File, from_dir)) = in_dest(&self.root, &to)? else {
                    return Err(format!(
                        "{} links to {}, which is not a file",
                        rel.display(),
                        to.display()
                    ));
                };
                let from_dir = from_dir.as_ref().unwrap_or(&self.root);
                let mut from = from_dir
                    .open_file(to.file_name().unwrap_or_default())
                    .map_err(|e| describe(&e))?;
                let held = Arc::new(self.reopen(parent)?);
                let (bytes, max) = (&mut self.bytes, self.spec.max_bytes);
                self.w
                    .file_in(&held, name, mode, self.ids, |file| {
                        copy(&mut from, file, bytes, max).map_err(|e| OpError::new(OP, "", e))
                    })
                    .map_err(fail)?;
            }
        }
        Ok(())
    }

    /// The directory `rel` under `dest`, one name at a time, never
    /// through a link; with `create`, the missing ones made (mode 755
    /// once filled).
    fn open(&mut self, rel: &Path, create: bool) -> Result<Dir, String> {
        let mut dir: Option<Dir> = None;
        let mut walked = PathBuf::new();
        for name in rel.iter() {
            walked.push(name);
            let here = dir.as_ref().unwrap_or(&self.root);
            let next = match here.entry(name).map_err(|e| describe(&e))?.map(|e| e.kind) {
                Some(Found::Dir) => here.sub(name).map_err(|e| describe(&e))?,
                None if create => {
                    let made = self.w.dir_in(here, name, self.ids).map_err(|e| e.message)?;
                    self.made.entry(walked.clone()).or_insert(0o755);
                    made
                }
                _ => {
                    return Err(format!(
                        "{} is not a directory (a link is not followed)",
                        walked.display()
                    ))
                }
            };
            dir = Some(next);
        }
        match dir {
            Some(d) => Ok(d),
            None => self.reopen(None),
        }
    }

    /// The held directory `dir`, or `dest` itself again.
    fn reopen(&self, dir: Option<Dir>) -> Result<Dir, String> {
        match dir {
            Some(d) => Ok(d),
            None => files::resolve_dir(&self.spec.dest).map_err(|e| describe(&e)),
        }
    }
}

/// Copies an entry's content into its file, counted against the bound.
fn copy(from: &mut dyn Read, to: &mut dyn Write, bytes: &mut u64, max: u64) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        *bytes += n as u64;
        if *bytes > max {
            return Err(TOO_LARGE.to_owned());
        }
        to.write_all(&buf[..n]).map_err(|e| e.to_string())?;
    }
}
