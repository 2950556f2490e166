//! The sending end of a transfer: walking what is sent, telling the
//! receiver what it is (so that it can say which files it has already),
//! and streaming it (`format`).

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::fail::{At, FileError, Outcome};
use super::format::{write_item, Item};
use super::Sum;

/// Content is read and sent in pieces of this size.
pub(crate) const PIECE: usize = 128 << 10;

/// What is sent: a file or tree on this host, or bytes in memory.
pub(crate) enum Sending<'a> {
    Path(&'a Path),
    Bytes { bytes: &'a [u8], mode: u32 },
}

/// What a sender sent.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Sent {
    /// Content bytes sent.
    pub bytes: u64,
    /// Files sent, and files the receiver had already.
    pub files: u64,
    pub same: u64,
    /// A file's SHA-256, or a tree's digest ([`TreeDigest`]).
    pub sha256: Sum,
    pub tree: bool,
}

/// A tree's SHA-256: over each entry in order, its path, its kind and its
/// content's SHA-256 (a link's target). Both ends compute it.
#[derive(Default)]
pub(crate) struct TreeDigest(Sha256);

impl TreeDigest {
    fn entry(&mut self, path: &[u8], kind: u8, what: &[u8]) {
        self.0.update((path.len() as u64).to_le_bytes());
        self.0.update(path);
        self.0.update([kind]);
        self.0.update((what.len() as u64).to_le_bytes());
        self.0.update(what);
    }

    pub(crate) fn dir(&mut self, path: &[u8]) {
        self.entry(path, b'd', &[]);
    }

    pub(crate) fn file(&mut self, path: &[u8], sum: &Sum) {
        self.entry(path, b'f', sum);
    }

    pub(crate) fn link(&mut self, path: &[u8], target: &[u8]) {
        self.entry(path, b'l', target);
    }

    pub(crate) fn finish(self) -> Sum {
        self.0.finalize().into()
    }
}

/// Visits `root` and, when it is a directory, everything under it, depth
/// first in byte order of names: relative path, full path, metadata. The
/// root's links are followed; links inside are visited as links.
/// What [`walk`] calls for each entry: relative path, path, metadata.
type Visit<'a> = dyn FnMut(&[u8], &Path, &Metadata) -> Outcome<()> + 'a;

fn walk(root: &Path, visit: &mut Visit<'_>) -> Outcome<()> {
    let meta = fs::metadata(root).at(root, "cannot read")?;
    visit(b"", root, &meta)?;
    if meta.is_dir() {
        walk_dir(root, &mut Vec::new(), visit)?;
    }
    Ok(())
}

fn walk_dir(dir: &Path, rel: &mut Vec<u8>, visit: &mut Visit<'_>) -> Outcome<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .at(dir, "cannot list the directory")?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .at(dir, "cannot list the directory")?;
    entries.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in entries {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).at(&path, "cannot read")?;
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        visit(rel, &path, &meta)?;
        if meta.is_dir() {
            walk_dir(&path, rel, visit)?;
        }
        rel.truncate(len);
    }
    Ok(())
}

fn not_sendable(path: &Path) -> FileError {
    FileError::new(
        path,
        "is not a regular file, a directory or a symbolic link (a device, socket or FIFO): \
         leave it out of the transfer",
    )
}

/// The regular files of `source`: relative paths and sizes, for the
/// receiver to say which it has already ([`super::receive::probe`]).
pub(crate) fn manifest(source: &Sending<'_>) -> Outcome<Vec<(Vec<u8>, u64)>> {
    let root = match source {
        Sending::Bytes { bytes, .. } => return Ok(vec![(Vec::new(), bytes.len() as u64)]),
        Sending::Path(root) => root,
    };
    let mut files = Vec::new();
    walk(root, &mut |rel, path, meta| {
        let kind = meta.file_type();
        if kind.is_file() {
            files.push((rel.to_vec(), meta.len()));
        } else if !kind.is_dir() && !kind.is_symlink() {
            return Err(not_sendable(path));
        }
        Ok(())
    })?;
    Ok(files)
}

/// Streams `source` to `w`, as [`Item::Same`] for the files whose content
/// the receiver has (`theirs`: its SHA-256 of the files of the same size).
/// `mode` overrides a file's own mode.
pub(crate) fn send(
    source: &Sending<'_>,
    theirs: &HashMap<Vec<u8>, Sum>,
    w: &mut impl Write,
) -> Outcome<Sent> {
    let mut sent = Sent::default();
    let what = match source {
        Sending::Path(root) => root,
        Sending::Bytes { .. } => Path::new("(bytes from memory)"),
    };
    let broke = |e: std::io::Error| FileError::new(what, format!("sending: {e}"));
    match source {
        Sending::Bytes { bytes, mode } => {
            let sum: Sum = Sha256::digest(bytes).into();
            sent.sha256 = sum;
            if theirs.get(&b""[..]) == Some(&sum) {
                sent.same = 1;
                write_item(
                    w,
                    &Item::Same {
                        path: Vec::new(),
                        mode: *mode,
                        sum,
                    },
                )
                .map_err(broke)?;
            } else {
                let size = bytes.len() as u64;
                write_item(
                    w,
                    &Item::File {
                        path: Vec::new(),
                        mode: *mode,
                        size,
                    },
                )
                .map_err(broke)?;
                w.write_all(bytes).map_err(broke)?;
                write_item(w, &Item::Sum(sum)).map_err(broke)?;
                sent.files = 1;
                sent.bytes = size;
            }
        }
        Sending::Path(root) => {
            let mut digest = TreeDigest::default();
            let mut buf = vec![0u8; PIECE];
            walk(root, &mut |rel, path, meta| {
                let mode = meta.permissions().mode() & 0o7777;
                let kind = meta.file_type();
                if rel.is_empty() {
                    sent.tree = kind.is_dir();
                }
                if kind.is_dir() {
                    digest.dir(rel);
                    return write_item(
                        w,
                        &Item::Dir {
                            path: rel.to_vec(),
                            mode,
                        },
                    )
                    .map_err(broke);
                }
                if kind.is_symlink() {
                    let target = fs::read_link(path).at(path, "cannot read the link")?;
                    let target = target.as_os_str().as_bytes().to_vec();
                    digest.link(rel, &target);
                    let item = Item::Symlink {
                        path: rel.to_vec(),
                        target,
                    };
                    return write_item(w, &item).map_err(broke);
                }
                if !kind.is_file() {
                    return Err(not_sendable(path));
                }
                let sum = send_file(rel, path, meta, mode, theirs, &mut buf, w, &mut sent)?;
                digest.file(rel, &sum);
                if rel.is_empty() {
                    sent.sha256 = sum;
                }
                Ok(())
            })?;
            if sent.tree {
                sent.sha256 = digest.finish();
            }
        }
    }
    write_item(w, &Item::End).map_err(broke)?;
    w.flush().map_err(broke)?;
    Ok(sent)
}

/// Sends one file, or says the receiver has it; returns its SHA-256.
#[allow(clippy::too_many_arguments)]
fn send_file(
    rel: &[u8],
    path: &Path,
    meta: &Metadata,
    mode: u32,
    theirs: &HashMap<Vec<u8>, Sum>,
    buf: &mut [u8],
    w: &mut impl Write,
    sent: &mut Sent,
) -> Outcome<Sum> {
    let broke = |e: std::io::Error| FileError::new(path, format!("sending: {e}"));
    let mut file = File::open(path).at(path, "cannot open")?;
    if let Some(their) = theirs.get(rel) {
        let mine = sum_of(&mut file, path)?;
        if &mine == their {
            sent.same += 1;
            let item = Item::Same {
                path: rel.to_vec(),
                mode,
                sum: mine,
            };
            write_item(w, &item).map_err(broke)?;
            return Ok(mine);
        }
        file = File::open(path).at(path, "cannot open")?;
    }
    let size = meta.len();
    write_item(
        w,
        &Item::File {
            path: rel.to_vec(),
            mode,
            size,
        },
    )
    .map_err(broke)?;
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = file.read(&mut buf[..want]).at(path, "cannot read")?;
        if n == 0 {
            return Err(FileError::new(
                path,
                format!(
                    "it shrank by {left} bytes while it was sent: send it again when it stays put"
                ),
            ));
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(broke)?;
        left -= n as u64;
    }
    let sum: Sum = hasher.finalize().into();
    write_item(w, &Item::Sum(sum)).map_err(broke)?;
    sent.files += 1;
    sent.bytes += size;
    Ok(sum)
}

/// The SHA-256 of what `r` yields.
pub(crate) fn sum_of(r: &mut impl Read, path: &Path) -> Outcome<Sum> {
    let mut hasher = Sha256::new();
    std::io::copy(r, &mut hasher).at(path, "cannot read")?;
    Ok(hasher.finalize().into())
}

/// A path under a root, from its relative bytes.
pub(crate) fn under(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(super::stage::path_of(rel))
    }
}
