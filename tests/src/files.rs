//! `#[remote]` functions that file transfers are checked with: a tree as
//! the host has it, its removal, owners; and the call's own streams, read,
//! written and left unread.

use std::io;
use std::os::unix::ffi::OsStrExt;

use chopsticks::remote;

use crate::fixtures::{digest, make_bytes};

/// One entry of a tree as [`tree_listing`] sees it: relative path (bytes), kind
/// (`d`, `f`, `l`), permission bits, and the content's SHA-256 (hex) or the
/// link's target.
pub type Entry = (Vec<u8>, char, u32, String);

/// Everything at and under `path` (bytes), in byte order of paths: what a
/// transfer wrote there, temporary files included. Links are not followed;
/// a missing path gives no entries.
#[remote]
pub fn tree_listing(path: Vec<u8>) -> Vec<Entry> {
    local_listing(std::path::Path::new(std::ffi::OsStr::from_bytes(&path)))
}

/// [`tree_listing`] on this machine.
pub fn local_listing(root: &std::path::Path) -> Vec<Entry> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &std::path::Path, rel: Vec<u8>, out: &mut Vec<Entry>) {
        let path = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(std::ffi::OsStr::from_bytes(&rel))
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            out.push((rel, 'l', 0, target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.push((rel.clone(), 'd', mode, String::new()));
            let mut names: Vec<Vec<u8>> = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            for name in names {
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend(name);
                walk(root, child, out);
            }
        } else {
            let mut hasher = Sha256::new();
            if let Ok(mut file) = std::fs::File::open(&path) {
                let _ = std::io::copy(&mut file, &mut hasher);
            }
            let hex: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push((rel, 'f', mode, hex));
        }
    }
    let mut out = Vec::new();
    walk(root, Vec::new(), &mut out);
    out
}

/// Removes `path` and everything under it; a missing path is fine.
#[remote]
pub fn remove_tree(path: Vec<u8>) -> io::Result<()> {
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&path));
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes the call's input stream and never reads it: a peer that grants
/// no more credit than the first window.
#[remote]
pub fn hold_input(ms: u64) -> bool {
    let input = chopsticks::agent::stream::input();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    input.is_ok()
}

/// Reads the call's input stream to its end: its length and a checksum.
#[remote]
pub fn digest_input() -> io::Result<(usize, u64)> {
    use std::io::Read;
    let mut data = Vec::new();
    chopsticks::agent::stream::input()?.read_to_end(&mut data)?;
    Ok(digest(data))
}

/// Streams [`make_bytes`]`(len)` back; returns how many bytes it sent.
#[remote]
pub fn stream_bytes(len: usize) -> io::Result<usize> {
    use std::io::Write;
    let mut out = chopsticks::agent::stream::output()?;
    out.write_all(&make_bytes(len))?;
    out.flush()?;
    Ok(len)
}

/// The owner's name and the group ID of `path`.
#[remote]
pub fn owner_of(path: String) -> io::Result<(String, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let name = passwd
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&meta.uid().to_string()))
        .and_then(|l| l.split(':').next())
        .unwrap_or("?")
        .to_owned();
    Ok((name, meta.gid()))
}
