//! The plan's pass over an archive: every entry checked (where it lands,
//! what it is, the bounds) and compared with what `dest` holds.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::read::{self, Format, Item, Kind};
use super::tree::{clean, Made, Tree};
use super::{Unarchive, TOO_LARGE};
use crate::files::{self, describe, Dir, Kind as Found};
use crate::ops::OpError;

/// What the plan found: which entries to write, and the counts.
#[derive(Debug)]
pub(super) struct Scanned {
    /// The archive, held open: apply reads the very file the plan read.
    pub file: File,
    pub format: Format,
    pub entries: u64,
    pub bytes: u64,
    pub create: u64,
    pub replace: u64,
    /// The entries to write, by their place in the archive: for a path
    /// named more than once, only the last (what stays), when it differs
    /// from what `dest` holds.
    pub writes: HashSet<u64>,
}

/// What a path is in `dest` (links not followed) and the directory it is
/// in (`None`: `dest`); `None` when nothing is there.
pub(super) type There = Option<(Found, Option<Dir>)>;

/// What `rel` is in the held directory `root`, reached one name at a time,
/// never through a link; with the directory it is in (`None`: `root`).
///
/// # Errors
/// A name on the way is a link or not a directory (as a refusal), or
/// cannot be read.
pub(super) fn in_dest(root: &Dir, rel: &Path) -> Result<There, String> {
    walk(root, rel).map(|(_, found)| found)
}

/// As [`in_dest`], with how many of `rel`'s parents `dest` has (as
/// directories).
fn walk(root: &Dir, rel: &Path) -> Result<(usize, There), String> {
    let names: Vec<&OsStr> = rel.iter().collect();
    let Some((last, parents)) = names.split_last() else {
        return Ok((0, None));
    };
    let mut dir: Option<Dir> = None;
    for (i, name) in parents.iter().enumerate() {
        let here = dir.as_ref().unwrap_or(root);
        let shown = || {
            names[..=i]
                .iter()
                .collect::<PathBuf>()
                .display()
                .to_string()
        };
        match here.entry(name).map_err(|e| describe(&e))?.map(|e| e.kind) {
            None => return Ok((i, None)),
            Some(Found::Dir) => {}
            Some(Found::Link) => {
                return Err(format!(
                    "goes through the symbolic link {} in dest",
                    shown()
                ))
            }
            Some(_) => return Err(format!("{} is not a directory in dest", shown())),
        }
        dir = Some(here.sub(name).map_err(|e| describe(&e))?);
    }
    let here = dir.as_ref().unwrap_or(root);
    let kind = here.entry(last).map_err(|e| describe(&e))?.map(|e| e.kind);
    Ok((parents.len(), kind.map(|k| (k, dir))))
}

/// The mode an entry is written with: no setuid or setgid bit.
pub(super) fn mode_of(mode: u32) -> u32 {
    mode & 0o1777
}

/// The pass's state.
struct Scan<'a> {
    spec: &'a Unarchive,
    root: Dir,
    uid: Option<u32>,
    gid: Option<u32>,
    entries: u64,
    bytes: u64,
    /// What the entries so far make, and what each path's last entry
    /// changes in `dest`.
    tree: Tree<Seen>,
}

/// What a path's last entry does to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Replace,
}

/// What the scan keeps of a path the archive makes.
#[derive(Debug, Default)]
struct Seen {
    /// The place in the archive of its last entry (`None` for a directory
    /// only implied by the paths below it).
    last: Option<u64>,
    /// What that entry changes.
    change: Option<Change>,
    /// A file's content: its SHA-256 (hex) and size.
    content: Option<(String, u64)>,
}

/// Reads the whole archive and compares it with `dest`.
///
/// # Errors
/// As [`Unarchive::plan`].
pub(super) fn scan(spec: &Unarchive) -> Result<Scanned, OpError> {
    let mut file = File::open(&spec.archive).map_err(|e| {
        spec.fail(format!(
            "cannot open the archive {}: {}",
            spec.shown_archive(),
            describe(&e)
        ))
    })?;
    let format = read::format(&mut file)
        .map_err(|e| spec.fail(format!("cannot read {}: {e}", spec.shown_archive())))?
        .ok_or_else(|| {
            spec.fail(format!(
                "{} is not a tar, tar.gz, tar.xz, tar.zst or zip archive (told by its first \
                 bytes)",
                spec.shown_archive()
            ))
        })?;
    let root = files::resolve_dir(&spec.dest).map_err(|e| {
        spec.fail(format!(
            "is not a directory this can unpack into ({}): create it first with \
             ops::directory",
            describe(&e)
        ))
    })?;
    let ids = spec.owner.ids(super::OP, &spec.dest)?;
    let mut scan = Scan {
        spec,
        root,
        uid: ids.uid,
        gid: ids.gid,
        entries: 0,
        bytes: 0,
        tree: Tree::new(spec.max_entries),
    };
    read::entries(
        &file,
        format,
        spec.max_bytes,
        spec.max_entries,
        &mut |item, content| scan.entry(item, content),
    )
    .map_err(|e| refused(spec, format, &e))?;
    let mut scanned = Scanned {
        file,
        format,
        entries: scan.entries,
        bytes: scan.bytes,
        create: 0,
        replace: 0,
        writes: HashSet::new(),
    };
    for node in scan.tree.nodes() {
        let Some(change) = node.data.change else {
            continue;
        };
        match change {
            Change::Create => scanned.create += 1,
            Change::Replace => scanned.replace += 1,
        }
        scanned.writes.extend(node.data.last);
    }
    Ok(scanned)
}

/// The archive's error, with what to do.
pub(super) fn refused(spec: &Unarchive, format: Format, e: &str) -> OpError {
    let advice = if e.contains(TOO_LARGE) {
        format!(
            "{e} ({} bytes): raise .max_bytes(..) if the archive is trusted",
            spec.max_bytes
        )
    } else {
        e.to_owned()
    };
    spec.fail(format!(
        "the {format} archive {} is refused, nothing was written: {advice}",
        spec.shown_archive()
    ))
}

impl Scan<'_> {
    fn entry(&mut self, item: Item, content: &mut dyn Read) -> Result<(), String> {
        let index = self.entries;
        self.entries += 1;
        if self.entries > self.spec.max_entries {
            return Err(format!(
                "it has more than {} entries: raise .max_entries(..)",
                self.spec.max_entries
            ));
        }
        let Some(rel) = clean(&item.path)? else {
            return Ok(());
        };
        let shown = rel.display().to_string();
        // Checked against the entries before it first, then against dest.
        let (made, mode, linked) = match &item.kind {
            Kind::Special => {
                return Err(format!(
                    "{shown} is a device node, fifo or socket: such entries are refused"
                ))
            }
            Kind::Dir => (Made::Dir, mode_of(item.mode), None),
            Kind::Symlink(_) => (Made::Link, mode_of(item.mode), None),
            Kind::File => (Made::File, mode_of(item.mode), None),
            Kind::Hardlink(to) => {
                let to = clean(to)?.unwrap_or_default();
                let (id, mode) = self.tree.link_to(&rel, &to)?;
                (Made::File, mode, Some(id))
            }
        };
        let added = self.tree.add(&rel, made, mode)?;
        let (have, found) = walk(&self.root, &rel).map_err(|e| format!("{shown} {e}"))?;
        // The directories first implied here that dest lacks are made.
        let parents = rel.iter().count() - 1;
        let first_new = parents - added.new_dirs.len();
        for (i, (id, _)) in added.new_dirs.iter().enumerate() {
            if first_new + i >= have {
                self.tree.node(*id).data.change = Some(Change::Create);
            }
        }
        let kind_there = found.as_ref().map(|(k, _)| *k);
        let mut sum = None;
        let differs = match made {
            Made::Dir => match kind_there {
                Some(Found::Dir) => false,
                None => true,
                Some(_) => {
                    return Err(format!(
                        "{shown} is a directory in the archive, not in dest"
                    ))
                }
            },
            Made::Link => {
                if kind_there == Some(Found::Dir) {
                    return Err(format!(
                        "{shown} is a link in the archive, a directory in dest"
                    ));
                }
                let now = match &found {
                    Some((Found::Link, dir)) => dir
                        .as_ref()
                        .unwrap_or(&self.root)
                        .readlink(rel.file_name().unwrap_or_default())
                        .ok(),
                    _ => None,
                };
                let target = match &item.kind {
                    Kind::Symlink(target) => Some(target.as_path()),
                    _ => None,
                };
                now.as_deref() != target
            }
            Made::File => {
                let (hex, size) = match linked {
                    // Written as a copy, counted as apply counts it.
                    Some(id) => {
                        let content = self.tree.node(id).data.content.clone();
                        let (hex, size) = content.ok_or_else(|| {
                            format!("{shown} is a hard link to a file without content")
                        })?;
                        self.count(size)?;
                        (hex, size)
                    }
                    None => self.content(content)?,
                };
                let differs = match &found {
                    Some((Found::Dir, _)) => {
                        return Err(format!(
                            "{shown} is a file in the archive, a directory in dest"
                        ))
                    }
                    Some((Found::File, dir)) => {
                        let dir = dir.as_ref().unwrap_or(&self.root);
                        !self.same(dir, &rel, &hex, size, mode)
                    }
                    _ => true,
                };
                sum = Some((hex, size));
                differs
            }
        };
        // A path named again: the last entry is what stays, so it alone
        // is compared with dest; the earlier ones are overwritten.
        let seen = &mut self.tree.node(added.id).data;
        seen.last = Some(index);
        seen.content = sum;
        seen.change = differs.then_some(match kind_there {
            None => Change::Create,
            Some(_) => Change::Replace,
        });
        Ok(())
    }

    /// Counts `n` more bytes against the bound.
    fn count(&mut self, n: u64) -> Result<(), String> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.spec.max_bytes {
            return Err(TOO_LARGE.to_owned());
        }
        Ok(())
    }

    /// The content's SHA-256 (hex) and size, counted against the bound.
    fn content(&mut self, content: &mut dyn Read) -> Result<(String, u64), String> {
        let left = self.spec.max_bytes.saturating_sub(self.bytes);
        let (hex, size) = files::sha256_hex(&mut &mut *content, left)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| TOO_LARGE.to_owned())?;
        self.count(size)?;
        Ok((hex, size))
    }

    /// Whether the file `rel` in `dir` has this content (SHA-256 in hex and
    /// size), mode and owner.
    fn same(&self, dir: &Dir, rel: &Path, hex: &str, size: u64, mode: u32) -> bool {
        let Ok(mut file) = dir.open_file(rel.file_name().unwrap_or_default()) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if meta.len() != size
            || meta.mode() & 0o7777 != mode
            || self.uid.is_some_and(|u| u != meta.uid())
            || self.gid.is_some_and(|g| g != meta.gid())
        {
            return false;
        }
        matches!(files::sha256_hex(&mut file, size), Ok(Some((h, _))) if h == hex)
    }
}
