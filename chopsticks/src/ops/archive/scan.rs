//! The plan's pass over an archive: every entry checked (where it lands,
//! what it is, the bounds) and compared with what `dest` holds.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::read::{self, Format, Item, Kind};
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
    /// The entries (cleaned paths) that differ from `dest`.
    pub writes: HashSet<PathBuf>,
}

/// `path` inside the archive as a relative path of plain names (`.`
/// dropped); `None` for the archive's root itself.
///
/// # Errors
/// An absolute path, or one with `..`.
pub(super) fn clean(path: &Path) -> Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{} is an absolute path", path.display()))
            }
            Component::ParentDir => return Err(format!("{} goes up with ..", path.display())),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// What `rel` is in the held directory `root`, reached one name at a time,
/// never through a link; with the directory it is in (`None`: `root`).
///
/// # Errors
/// A name on the way is a link or not a directory (as a refusal), or
/// cannot be read.
pub(super) fn in_dest(root: &Dir, rel: &Path) -> Result<Option<(Found, Option<Dir>)>, String> {
    let names: Vec<&OsStr> = rel.iter().collect();
    let Some((last, parents)) = names.split_last() else {
        return Ok(None);
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
            None => return Ok(None),
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
    Ok(kind.map(|k| (k, dir)))
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
    create: u64,
    replace: u64,
    /// Links the archive makes: nothing may go through them.
    links: HashSet<PathBuf>,
    /// Directories known to be there or to be made.
    dirs: HashSet<PathBuf>,
    /// The archive's files: content and mode, for its hard links.
    files: HashMap<PathBuf, ([u8; 32], u32)>,
    writes: HashSet<PathBuf>,
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
        create: 0,
        replace: 0,
        links: HashSet::new(),
        dirs: HashSet::new(),
        files: HashMap::new(),
        writes: HashSet::new(),
    };
    read::entries(
        &file,
        format,
        spec.max_bytes,
        spec.max_entries,
        &mut |item, content| scan.entry(item, content),
    )
    .map_err(|e| refused(spec, format, &e))?;
    Ok(Scanned {
        file,
        format,
        entries: scan.entries,
        bytes: scan.bytes,
        create: scan.create,
        replace: scan.replace,
        writes: scan.writes,
    })
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
        self.parents(&rel)?;
        let found = in_dest(&self.root, &rel).map_err(|e| format!("{shown} {e}"))?;
        let kind_there = found.as_ref().map(|(k, _)| *k);
        let mode = mode_of(item.mode);
        let differs = match item.kind {
            Kind::Special => {
                return Err(format!(
                    "{shown} is a device node, fifo or socket: such entries are refused"
                ))
            }
            Kind::Dir => {
                self.links.remove(&rel);
                self.dirs.insert(rel.clone());
                match kind_there {
                    Some(Found::Dir) => false,
                    None => true,
                    Some(_) => {
                        return Err(format!(
                            "{shown} is a directory in the archive, not in dest"
                        ))
                    }
                }
            }
            Kind::Symlink(target) => {
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
                self.links.insert(rel.clone());
                now.as_deref() != Some(target.as_path())
            }
            Kind::File | Kind::Hardlink(_) => {
                let (sum, mode) = match &item.kind {
                    Kind::Hardlink(to) => {
                        let to = clean(to)?.unwrap_or_default();
                        *self.files.get(&to).ok_or_else(|| {
                            format!(
                                "{shown} is a hard link to {}, which is not an earlier file of \
                                 the archive",
                                to.display()
                            )
                        })?
                    }
                    _ => (self.content(content)?, mode),
                };
                self.files.insert(rel.clone(), (sum, mode));
                self.links.remove(&rel);
                match &found {
                    Some((Found::Dir, _)) => {
                        return Err(format!(
                            "{shown} is a file in the archive, a directory in dest"
                        ))
                    }
                    Some((Found::File, dir)) => {
                        !self.same(dir.as_ref().unwrap_or(&self.root), &rel, sum, mode)
                    }
                    _ => true,
                }
            }
        };
        if differs {
            match kind_there {
                None => self.create += 1,
                Some(_) => self.replace += 1,
            }
            self.writes.insert(rel);
        }
        Ok(())
    }

    /// Refuses a path through a link; counts the directories it implies.
    fn parents(&mut self, rel: &Path) -> Result<(), String> {
        let mut parent = PathBuf::new();
        let names: Vec<&OsStr> = rel.iter().collect();
        for name in &names[..names.len().saturating_sub(1)] {
            parent.push(name);
            if self.links.contains(&parent) {
                return Err(format!(
                    "{} goes through the symbolic link {} the archive makes",
                    rel.display(),
                    parent.display()
                ));
            }
            if self.dirs.insert(parent.clone()) {
                // Checked on the way by `in_dest`; a missing one is made.
                if in_dest(&self.root, &parent)
                    .map_err(|e| format!("{} {e}", rel.display()))?
                    .is_none()
                {
                    self.create += 1;
                    self.writes.insert(parent.clone());
                }
            }
        }
        Ok(())
    }

    /// The content's SHA-256, counted against the bound.
    fn content(&mut self, content: &mut dyn Read) -> Result<[u8; 32], String> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            };
            self.bytes += n as u64;
            if self.bytes > self.spec.max_bytes {
                return Err(TOO_LARGE.to_owned());
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finalize().into())
    }

    /// Whether the file `rel` in `dir` has this content, mode and owner.
    fn same(&self, dir: &Dir, rel: &Path, sum: [u8; 32], mode: u32) -> bool {
        let Ok(mut file) = dir.open_file(rel.file_name().unwrap_or_default()) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if meta.mode() & 0o7777 != mode
            || self.uid.is_some_and(|u| u != meta.uid())
            || self.gid.is_some_and(|g| g != meta.gid())
        {
            return false;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(_) => return false,
            }
        }
        <[u8; 32]>::from(hasher.finalize()) == sum
    }
}
