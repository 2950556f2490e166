//! The receiving end of a transfer: saying which files it has already
//! ([`probe`]), and writing what arrives ([`receive`]) so that no target
//! ever holds half a file (`stage`).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::fail::{At, FileError, Outcome};
use super::format::{read_item, Item};
use super::send::{sum_of, under, TreeDigest, PIECE};
use super::stage::{parent_of, sync_dir, sync_filesystem, Ownership, Sealed, Staged};
use super::{hex, Sum};

/// What the receiving end applies, as the caller chose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Apply {
    /// Every file's mode instead of the sender's.
    pub mode: Option<u32>,
    /// Owner and group, by name or number.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Create missing parent directories of the target.
    pub parents: bool,
}

/// What a receiver did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Received {
    /// Content bytes written.
    pub bytes: u64,
    /// Files written, and files that had the content already.
    pub files: u64,
    pub same: u64,
    /// Anything changed: content, a mode, an owner, a link, a directory.
    pub changed: bool,
    /// Some file was written into its target in place (rename refused).
    pub in_place: bool,
    /// A file's SHA-256, or a tree's digest.
    pub sha256: Sum,
    pub tree: bool,
}

/// For each wanted file (relative path and the sender's size), the SHA-256
/// of the file at that path under `dest`, when it is a regular file of the
/// same size: only those can be the same.
pub(crate) fn probe(dest: &Path, wanted: &[(Vec<u8>, u64)]) -> Vec<Option<Sum>> {
    wanted
        .iter()
        .map(|(rel, size)| {
            let path = under(dest, rel);
            let meta = fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() != *size {
                return None;
            }
            sum_of(&mut File::open(&path).ok()?, &path).ok()
        })
        .collect()
}

/// A user or group by name or number.
fn resolve(name: &str, group: bool) -> io::Result<u32> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 16 << 10];
    let not_found = || {
        let what = if group { "group" } else { "user" };
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("there is no {what} `{name}` on this host"),
        )
    };
    // SAFETY: the out-structs and buffer live across the call; the result
    // pointer is only read when the call says it found an entry.
    unsafe {
        if group {
            let mut gr: libc::group = std::mem::zeroed();
            let mut found = std::ptr::null_mut();
            let rc = libc::getgrnam_r(
                c.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            );
            if rc != 0 || found.is_null() {
                return Err(not_found());
            }
            Ok(gr.gr_gid)
        } else {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut found = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            );
            if rc != 0 || found.is_null() {
                return Err(not_found());
            }
            Ok(pw.pw_uid)
        }
    }
}

fn ownership(dest: &Path, apply: &Apply) -> Outcome<Ownership> {
    let id = |name: &Option<String>, group| {
        name.as_deref()
            .map(|n| resolve(n, group).map_err(|e| FileError::new(dest, e.to_string())))
            .transpose()
    };
    Ok(Ownership {
        uid: id(&apply.owner, false)?,
        gid: id(&apply.group, true)?,
    })
}

/// Makes sure `dest`'s directory exists (creating it when `parents`).
fn prepare_parent(dest: &Path, parents: bool) -> Outcome<()> {
    let dir = parent_of(dest);
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(FileError::new(dir, "is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound && parents => {
            fs::create_dir_all(dir).at(dir, "cannot create the directory")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(FileError::new(
            dir,
            "the directory does not exist: create it first, or ask for parent directories \
             (`FileOptions::parents(true)`)",
        )),
        Err(e) => Err(FileError::io(dir, "cannot reach the directory", &e)),
    }
}

/// Gives an existing `path` `mode` and the owner; returns whether that
/// changed anything.
fn fix_meta(path: &Path, mode: u32, owner: Ownership) -> Outcome<bool> {
    let meta = fs::symlink_metadata(path).at(path, "cannot read")?;
    let mut changed = false;
    if meta.permissions().mode() & 0o7777 != mode & 0o7777 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .at(path, "cannot change the mode")?;
        changed = true;
    }
    let uid = owner.uid.filter(|u| *u != meta.uid());
    let gid = owner.gid.filter(|g| *g != meta.gid());
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).at(path, "cannot change the owner")?;
        changed = true;
    }
    Ok(changed)
}

/// Makes `path` a directory with `mode`; returns whether it changed.
fn ensure_dir(path: &Path, mode: u32, owner: Ownership) -> Outcome<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fix_meta(path, mode, owner),
        Ok(_) => Err(FileError::new(
            path,
            "is in the way: it is not a directory, and a directory is sent there; remove it",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(path).at(path, "cannot create the directory")?;
            fix_meta(path, mode, owner)?;
            Ok(true)
        }
        Err(e) => Err(FileError::io(path, "cannot reach", &e)),
    }
}

fn broke(dest: &Path, e: &io::Error) -> FileError {
    FileError::new(dest, format!("the transfer broke off: {e}"))
}

/// Writes the `size` bytes of content that follow into a temporary file
/// for `path`, and checks them against the [`Item::Sum`] after them.
fn content(path: &Path, size: u64, r: &mut impl Read, buf: &mut [u8]) -> Outcome<(Staged, Sum)> {
    let mut staged = Staged::create(path).at(path, "cannot create a temporary file beside it")?;
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(broke(path, &io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(broke(path, &e)),
        };
        hasher.update(&buf[..n]);
        staged
            .file()
            .write_all(&buf[..n])
            .at(path, "cannot write")?;
        left -= n as u64;
    }
    let sum: Sum = hasher.finalize().into();
    match read_item(r).map_err(|e| broke(path, &e))? {
        Item::Sum(theirs) if theirs == sum => Ok((staged, sum)),
        Item::Sum(theirs) => Err(FileError::new(
            path,
            format!(
                "the content arrived with SHA-256 {}, but the sender's is {}; the target keeps \
                 its old content: send it again",
                hex(&sum),
                hex(&theirs)
            ),
        )),
        other => Err(FileError::new(
            path,
            format!("the transfer is corrupt: {other:?} instead of the content's SHA-256"),
        )),
    }
}

/// Refuses to commit when the transfer's caller gave up.
fn still_wanted(dest: &Path, wanted: &dyn Fn() -> bool) -> Outcome<()> {
    if wanted() {
        return Ok(());
    }
    Err(FileError::new(
        dest,
        "the transfer was cancelled; the target keeps its old content",
    ))
}

/// Applies the transfer `r` carries to `dest`, unless `wanted` says the
/// caller gave up by the time the files would replace their targets.
pub(crate) fn receive(
    dest: &Path,
    apply: &Apply,
    r: &mut impl Read,
    wanted: &dyn Fn() -> bool,
) -> Outcome<Received> {
    let owner = ownership(dest, apply)?;
    let mut got = Received::default();
    let mut buf = vec![0u8; PIECE];
    let first = read_item(r).map_err(|e| broke(dest, &e))?;
    match first {
        Item::File { path, mode, size } if path.is_empty() => {
            prepare_parent(dest, apply.parents)?;
            if fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
                return Err(FileError::new(
                    dest,
                    "is a directory, and a file is sent there: name the file inside it",
                ));
            }
            let (staged, sum) = content(dest, size, r, &mut buf)?;
            let mode = apply.mode.unwrap_or(mode);
            let sealed = staged
                .seal(mode, owner, true)
                .at(dest, "cannot finish the file")?;
            got.in_place = sealed
                .commit()
                .at(dest, "cannot move the file into place")?;
            sync_dir(parent_of(dest));
            (got.bytes, got.files, got.changed, got.sha256) = (size, 1, true, sum);
        }
        Item::Same { path, mode, sum } if path.is_empty() => {
            got.changed = fix_meta(dest, apply.mode.unwrap_or(mode), owner)?;
            (got.same, got.sha256) = (1, sum);
        }
        Item::Dir { path, mode } if path.is_empty() => {
            prepare_parent(dest, apply.parents)?;
            let how = How {
                apply,
                owner,
                wanted,
            };
            receive_tree(dest, mode, &how, r, &mut buf, &mut got)?;
            return Ok(got);
        }
        other => {
            return Err(FileError::new(
                dest,
                format!("the transfer is corrupt: it starts with {other:?}"),
            ))
        }
    }
    match read_item(r).map_err(|e| broke(dest, &e))? {
        Item::End => Ok(got),
        other => Err(FileError::new(
            dest,
            format!("the transfer is corrupt: {other:?} after a single file"),
        )),
    }
}

/// How a tree is written: the caller's options, the owner they name, and
/// whether the caller still wants it.
struct How<'a> {
    apply: &'a Apply,
    owner: Ownership,
    wanted: &'a dyn Fn() -> bool,
}

fn receive_tree(
    dest: &Path,
    mode: u32,
    how: &How<'_>,
    r: &mut impl Read,
    buf: &mut [u8],
    got: &mut Received,
) -> Outcome<()> {
    let How {
        apply,
        owner,
        wanted,
    } = *how;
    got.tree = true;
    let mut digest = TreeDigest::default();
    digest.dir(b"");
    got.changed |= ensure_dir(dest, mode, owner)?;
    let mut sealed: Vec<Sealed> = Vec::new();
    loop {
        match read_item(r).map_err(|e| broke(dest, &e))? {
            Item::Dir { path: rel, mode } => {
                digest.dir(&rel);
                got.changed |= ensure_dir(&under(dest, &rel), mode, owner)?;
            }
            Item::File {
                path: rel,
                mode,
                size,
            } => {
                let path = under(dest, &rel);
                let (staged, sum) = content(&path, size, r, buf)?;
                let mode = apply.mode.unwrap_or(mode);
                sealed.push(
                    staged
                        .seal(mode, owner, false)
                        .at(&path, "cannot finish the file")?,
                );
                digest.file(&rel, &sum);
                got.files += 1;
                got.bytes += size;
            }
            Item::Same {
                path: rel,
                mode,
                sum,
            } => {
                digest.file(&rel, &sum);
                got.changed |= fix_meta(&under(dest, &rel), apply.mode.unwrap_or(mode), owner)?;
                got.same += 1;
            }
            Item::Symlink { path: rel, target } => {
                digest.link(&rel, &target);
                let path = under(dest, &rel);
                let target = super::stage::path_of(&target);
                if fs::read_link(&path).is_ok_and(|t| t == target) {
                    continue;
                }
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    return Err(FileError::new(
                        &path,
                        "is a directory, and a symbolic link is sent there; remove it",
                    ));
                }
                let temp = Sealed::temp_for(&path);
                std::os::unix::fs::symlink(&target, &temp).at(&path, "cannot create the link")?;
                sealed.push(Sealed::adopt(temp, path));
            }
            Item::End => break,
            Item::Sum(_) => {
                return Err(FileError::new(
                    dest,
                    "the transfer is corrupt: a stray SHA-256",
                ))
            }
        }
    }
    if !sealed.is_empty() {
        // One flush of the filesystem makes every file durable before any
        // of them replaces its target.
        sync_filesystem(dest).at(dest, "cannot flush the files to disk")?;
        got.changed = true;
    }
    still_wanted(dest, wanted)?;
    let mut dirs = BTreeSet::<PathBuf>::new();
    for file in sealed {
        dirs.insert(parent_of(file.dest()).to_owned());
        let path = file.dest().to_owned();
        got.in_place |= file.commit().at(&path, "cannot move the file into place")?;
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    got.sha256 = digest.finish();
    Ok(())
}
