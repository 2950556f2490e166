//! The receiving end of a transfer: saying which files it has already
//! ([`probe`]), and writing what arrives ([`receive`]) so that no target
//! ever holds half a file (`stage`). Every write is relative to a
//! directory held open (`at`): the destination as it was named, and below
//! it each directory opened without following a link, so a directory
//! swapped for a link while the transfer streams redirects nothing.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::at::{Dir, Kind};
use super::fail::{At, FileError, Outcome};
use super::format::{read_item, Item};
use super::send::{sum_of, under, TreeDigest, PIECE};
use super::stage::{parent_of, Ownership, Sealed, Staged};
use super::{hex, Sum};

/// What the receiving end applies, as the caller chose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Apply {
    /// Every file's mode instead of the sender's.
    pub mode: Option<u32>,
    /// Owner and group, by name or number.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Create missing parent directories of the target.
    pub parents: bool,
    /// Drop the setuid and setgid bits the sender's modes have (a fetch
    /// does: a host must not plant setuid programs here), unless `mode`
    /// names them.
    pub strip_setid: bool,
    /// The SHA-256 (lower-case hex) the one file sent must have, whatever
    /// the sender announces: other content is refused before it replaces
    /// the target (`ops::download` puts what it checked so).
    pub sha256: Option<String>,
}

impl Apply {
    /// The mode to give a file the sender sent with `sent`.
    fn mode_for(&self, sent: u32) -> u32 {
        match self.mode {
            Some(mode) => mode,
            None if self.strip_setid => sent & !0o6000,
            None => sent,
        }
    }

    /// The mode to give a directory the sender sent with `sent`: its own,
    /// without setuid and setgid bits for a fetch.
    fn dir_mode_for(&self, sent: u32) -> u32 {
        match self.strip_setid {
            true => sent & !0o6000,
            false => sent,
        }
    }
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
            // Paths a host names for a fetch stay inside the destination.
            let sane = !rel.contains(&0)
                && (rel.is_empty()
                    || rel
                        .split(|b| *b == b'/')
                        .all(|part| !part.is_empty() && part != b"." && part != b".."));
            if !sane || !real_dirs_on_the_way(dest, rel) {
                return None;
            }
            let path = under(dest, rel);
            let meta = fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() != *size {
                return None;
            }
            sum_of(&mut File::open(&path).ok()?, &path).ok()
        })
        .collect()
}

/// Whether every directory between `dest` and `dest/rel` is a directory
/// and not a link (a probe reads only what the transfer would write).
fn real_dirs_on_the_way(dest: &Path, rel: &[u8]) -> bool {
    let mut at = 0;
    while let Some(slash) = rel[at..].iter().position(|b| *b == b'/') {
        at += slash;
        let dir = under(dest, &rel[..at]);
        if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            return false;
        }
        at += 1;
    }
    true
}

fn ownership(dest: &Path, apply: &Apply) -> Outcome<Ownership> {
    let id = |name: &Option<String>, group| {
        name.as_deref()
            .map(|n| {
                super::accounts::resolve(n, group).map_err(|e| FileError::new(dest, e.to_string()))
            })
            .transpose()
    };
    Ok(Ownership {
        uid: id(&apply.owner, false)?,
        gid: id(&apply.group, true)?,
    })
}

/// `dest`'s directory, held open (made first, with its missing parents,
/// when `parents`), and `dest`'s name in it.
fn parent_dir(dest: &Path, parents: bool) -> Outcome<(Arc<Dir>, &OsStr)> {
    let name = match dest.file_name() {
        Some(name) if !dest.as_os_str().as_bytes().ends_with(b"/..") => name,
        _ => {
            return Err(FileError::new(
                dest,
                "names no file: give the path of the file or directory to write",
            ))
        }
    };
    let dir = parent_of(dest);
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(FileError::new(dir, "is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound && parents => {
            fs::create_dir_all(dir).at(dir, "cannot create the directory")?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FileError::new(
                dir,
                "the directory does not exist: create it first, or ask for parent directories \
                 (`.parents(true)` on the put or fetch)",
            ))
        }
        Err(e) => return Err(FileError::io(dir, "cannot reach the directory", &e)),
    }
    let held = Dir::open(dir).at(dir, "cannot open the directory")?;
    Ok((Arc::new(held), name))
}

/// Gives the entry `name` of `dir` (never through a link) `mode` and the
/// owner; returns whether that changed anything.
fn fix_meta(dir: &Dir, name: &OsStr, mode: u32, owner: Ownership) -> Outcome<bool> {
    let path = dir.join(name);
    let read = |dir: &Dir| dir.entry(name).at(&path, "cannot read");
    let Some(entry) = read(dir)?.filter(|e| matches!(e.kind, Kind::File | Kind::Dir)) else {
        return Err(FileError::new(
            &path,
            "is not a regular file or a directory, as the transfer says it is; remove it",
        ));
    };
    let mut changed = false;
    // The owner first: changing it clears the setuid and setgid bits.
    let uid = owner.uid.filter(|u| *u != entry.uid);
    let gid = owner.gid.filter(|g| *g != entry.gid);
    if uid.is_some() || gid.is_some() {
        dir.set_owner(name, uid, gid)
            .at(&path, "cannot change the owner")?;
        changed = true;
    }
    let entry = match changed {
        true => read(dir)?.unwrap_or(entry),
        false => entry,
    };
    if entry.mode != mode & 0o7777 {
        dir.set_mode(name, mode)
            .at(&path, "cannot change the mode")?;
        changed = true;
    }
    Ok(changed)
}

/// Makes the entry `name` of `parent` a directory with `mode` and the
/// owner, and holds it open (never through a link); returns it and whether
/// anything changed.
fn ensure_dir(parent: &Dir, name: &OsStr, mode: u32, owner: Ownership) -> Outcome<(Dir, bool)> {
    let path = parent.join(name);
    let made =
        match parent.entry(name).at(&path, "cannot reach")? {
            Some(e) if e.kind == Kind::Dir => false,
            Some(_) => return Err(FileError::new(
                &path,
                "is in the way: it is not a directory, and a directory is sent there; remove it",
            )),
            None => {
                parent
                    .mkdir(name, 0o700)
                    .at(&path, "cannot create the directory")?;
                true
            }
        };
    let dir = parent.sub(name).at(&path, "cannot open the directory")?;
    let changed = fix_dir(&dir, mode, owner)?;
    Ok((dir, made || changed))
}

/// Gives the held directory `dir` `mode` and the owner; returns whether
/// that changed anything.
fn fix_dir(dir: &Dir, mode: u32, owner: Ownership) -> Outcome<bool> {
    let path = dir.path();
    let entry = dir.own_entry().at(path, "cannot read")?;
    let mut changed = false;
    let uid = owner.uid.filter(|u| *u != entry.uid);
    let gid = owner.gid.filter(|g| *g != entry.gid);
    if uid.is_some() || gid.is_some() {
        dir.set_own_owner(uid, gid)
            .at(path, "cannot change the owner")?;
        changed = true;
    }
    let entry = dir.own_entry().at(path, "cannot read")?;
    if entry.mode != mode & 0o7777 {
        dir.set_own_mode(mode).at(path, "cannot change the mode")?;
        changed = true;
    }
    Ok(changed)
}

/// The last component of a relative path.
fn name_rel(rel: &[u8]) -> &OsStr {
    OsStr::from_bytes(rel.rsplit(|b| *b == b'/').next().unwrap_or(rel))
}

/// The directories of a tree being received, held open: the root as it
/// was named, each other one opened from its parent without following a
/// link. Reopened from the root (the same way) when no longer held.
struct Dirs {
    root: Arc<Dir>,
    held: HashMap<Vec<u8>, Arc<Dir>>,
}

impl Dirs {
    /// At most this many directories are held at once.
    const HELD: usize = 256;

    fn new(root: Arc<Dir>) -> Dirs {
        Dirs {
            root,
            held: HashMap::new(),
        }
    }

    fn hold(&mut self, rel: Vec<u8>, dir: Arc<Dir>) {
        if self.held.len() >= Self::HELD {
            self.held.clear();
        }
        self.held.insert(rel, dir);
    }

    /// The directory `rel` (`b""`: the root).
    fn get(&mut self, rel: &[u8]) -> Outcome<Arc<Dir>> {
        if rel.is_empty() {
            return Ok(Arc::clone(&self.root));
        }
        if let Some(dir) = self.held.get(rel) {
            return Ok(Arc::clone(dir));
        }
        let mut dir = Arc::clone(&self.root);
        for part in rel.split(|b| *b == b'/') {
            let name = OsStr::from_bytes(part);
            let next = dir
                .sub(name)
                .at(&dir.join(name), "cannot open the directory")?;
            dir = Arc::new(next);
        }
        self.hold(rel.to_vec(), Arc::clone(&dir));
        Ok(dir)
    }
}

/// The directory part of a relative path (`b""` for a name at the root).
fn parent_rel(rel: &[u8]) -> &[u8] {
    rel.iter()
        .rposition(|b| *b == b'/')
        .map_or(&rel[..0], |at| &rel[..at])
}

/// Checks that an item's path stays under the destination: relative, no
/// `.`, `..` or empty components, no NUL, and inside a directory this
/// transfer created or checked (so never through a link that was there).
fn checked<'a>(dest: &Path, rel: &'a [u8], dirs: &HashSet<Vec<u8>>) -> Outcome<&'a [u8]> {
    let bad = rel.is_empty()
        || rel.contains(&0)
        || rel
            .split(|b| *b == b'/')
            .any(|part| part.is_empty() || part == b"." || part == b"..");
    if bad || !dirs.contains(parent_rel(rel)) {
        return Err(FileError::new(
            dest,
            format!(
                "the transfer is corrupt or hostile: the entry {:?} would not stay inside it",
                String::from_utf8_lossy(rel)
            ),
        ));
    }
    Ok(rel)
}

fn broke(dest: &Path, e: &io::Error) -> FileError {
    FileError::new(dest, format!("the transfer broke off: {e}"))
}

/// How much of a file arriving goes to the disk at a time while the rest
/// arrives ([`Staged::write_back`]).
const WRITE_BACK: u64 = 8 << 20;

/// Writes the `size` bytes of content that follow into a temporary file
/// for the entry `name` of `dir`, and checks them against the
/// [`Item::Sum`] after them.
fn content(
    dir: &Arc<Dir>,
    name: &OsStr,
    size: u64,
    r: &mut impl Read,
    buf: &mut [u8],
) -> Outcome<(Staged, Sum)> {
    let path = &dir.join(name);
    let mut staged =
        Staged::create(dir, name).at(path, "cannot create a temporary file beside it")?;
    let mut hasher = Sha256::new();
    let mut left = size;
    // Where the range not yet handed to the disk starts.
    let mut unsynced = 0;
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
        if size - left >= unsynced + WRITE_BACK {
            staged.write_back(unsynced, WRITE_BACK);
            unsynced += WRITE_BACK;
        }
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

/// Refuses content whose SHA-256 is not the one the caller expects.
fn expected(dest: &Path, apply: &Apply, sum: &Sum) -> Outcome<()> {
    match &apply.sha256 {
        Some(want) if *want != hex(sum) => Err(FileError::new(
            dest,
            format!(
                "the content sent has SHA-256 {}, not the {want} expected; the target keeps \
                 its old content",
                hex(sum)
            ),
        )),
        _ => Ok(()),
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
            let (dir, name) = parent_dir(dest, apply.parents)?;
            if dir
                .entry(name)
                .ok()
                .flatten()
                .is_some_and(|e| e.kind == Kind::Dir)
            {
                return Err(FileError::new(
                    dest,
                    "is a directory, and a file is sent there: name the file inside it",
                ));
            }
            let (staged, sum) = content(&dir, name, size, r, &mut buf)?;
            expected(dest, apply, &sum)?;
            let mode = apply.mode_for(mode);
            let sealed = staged
                .seal(mode, owner, true)
                .at(dest, "cannot finish the file")?;
            still_wanted(dest, wanted)?;
            got.in_place = sealed
                .commit()
                .at(dest, "cannot move the file into place")?;
            // Some filesystems refuse fsync on a directory; the data is durable.
            let _ = dir.sync();
            (got.bytes, got.files, got.changed, got.sha256) = (size, 1, true, sum);
        }
        Item::Same { path, mode, sum } if path.is_empty() => {
            expected(dest, apply, &sum)?;
            still_wanted(dest, wanted)?;
            let (dir, name) = parent_dir(dest, false)?;
            got.changed = fix_meta(&dir, name, apply.mode_for(mode), owner)?;
            (got.same, got.sha256) = (1, sum);
        }
        Item::Dir { path, .. } if path.is_empty() && apply.sha256.is_some() => {
            return Err(FileError::new(
                dest,
                "a directory tree arrived where one file of a given SHA-256 was expected; \
                 nothing was written",
            ))
        }
        Item::Dir { path, mode } if path.is_empty() => {
            let (parent, name) = parent_dir(dest, apply.parents)?;
            let how = How {
                apply,
                owner,
                wanted,
            };
            receive_tree(dest, (&parent, name), mode, &how, r, &mut buf, &mut got)?;
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
    (parent, name): (&Arc<Dir>, &OsStr),
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
    // The root may be a link to a directory (`/srv/app -> releases/3`): it
    // was named, and is followed; an existing root keeps its mode and owner
    // (a home directory's matter to sshd): only what is inside it follows
    // the source, and nothing inside is reached through a link.
    let root = match fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => Dir::open(dest).at(dest, "cannot open the directory")?,
        _ => {
            let (root, changed) = ensure_dir(parent, name, apply.dir_mode_for(mode), owner)?;
            got.changed |= changed;
            root
        }
    };
    let root = Arc::new(root);
    let mut dirs = Dirs::new(Arc::clone(&root));
    let mut sealed: Vec<Sealed> = Vec::new();
    // The directories written or checked so far: each entry must be in one.
    let mut known: HashSet<Vec<u8>> = HashSet::from([Vec::new()]);
    loop {
        match read_item(r).map_err(|e| broke(dest, &e))? {
            Item::Dir { path: rel, mode } => {
                checked(dest, &rel, &known)?;
                digest.dir(&rel);
                let parent = dirs.get(parent_rel(&rel))?;
                let mode = apply.dir_mode_for(mode);
                let (dir, changed) = ensure_dir(&parent, name_rel(&rel), mode, owner)?;
                got.changed |= changed;
                dirs.hold(rel.clone(), Arc::new(dir));
                known.insert(rel);
            }
            Item::File {
                path: rel,
                mode,
                size,
            } => {
                checked(dest, &rel, &known)?;
                let (dir, name) = (dirs.get(parent_rel(&rel))?, name_rel(&rel));
                if dir
                    .entry(name)
                    .ok()
                    .flatten()
                    .is_some_and(|e| e.kind == Kind::Dir)
                {
                    return Err(FileError::new(
                        &dir.join(name),
                        "is a directory, and a file is sent there; remove it",
                    ));
                }
                let (staged, sum) = content(&dir, name, size, r, buf)?;
                let mode = apply.mode_for(mode);
                sealed.push(
                    staged
                        .seal(mode, owner, false)
                        .at(&dir.join(name), "cannot finish the file")?,
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
                checked(dest, &rel, &known)?;
                digest.file(&rel, &sum);
                let dir = dirs.get(parent_rel(&rel))?;
                got.changed |= fix_meta(&dir, name_rel(&rel), apply.mode_for(mode), owner)?;
                got.same += 1;
            }
            Item::Symlink { path: rel, target } => {
                checked(dest, &rel, &known)?;
                digest.link(&rel, &target);
                let (dir, name) = (dirs.get(parent_rel(&rel))?, name_rel(&rel));
                let target = super::stage::path_of(&target);
                if dir.readlink(name).is_ok_and(|t| t == target) {
                    continue;
                }
                if dir
                    .entry(name)
                    .ok()
                    .flatten()
                    .is_some_and(|e| e.kind == Kind::Dir)
                {
                    return Err(FileError::new(
                        &dir.join(name),
                        "is a directory, and a symbolic link is sent there; remove it",
                    ));
                }
                let link = Sealed::link(&dir, name, &target)
                    .at(&dir.join(name), "cannot create the link")?;
                sealed.push(link);
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
        root.sync_filesystem()
            .at(dest, "cannot flush the files to disk")?;
        got.changed = true;
    }
    still_wanted(dest, wanted)?;
    let mut touched: Vec<Arc<Dir>> = Vec::new();
    for file in sealed {
        if !touched.iter().any(|d| Arc::ptr_eq(d, file.dir())) {
            touched.push(Arc::clone(file.dir()));
        }
        let path = file.dest();
        got.in_place |= file.commit().at(&path, "cannot move the file into place")?;
    }
    for dir in touched {
        let _ = dir.sync();
    }
    got.sha256 = digest.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::format::write_item;
    use super::*;

    fn tree(items: &[Item]) -> Vec<u8> {
        let mut stream = Vec::new();
        write_item(
            &mut stream,
            &Item::Dir {
                path: vec![],
                mode: 0o755,
            },
        )
        .unwrap();
        for item in items {
            write_item(&mut stream, item).unwrap();
        }
        write_item(&mut stream, &Item::End).unwrap();
        stream
    }

    /// A sender (a compromised host, for a fetch) cannot make the receiver
    /// write outside the destination, nor through a link in it.
    #[test]
    fn entries_that_leave_the_destination_are_refused() {
        let root = std::env::temp_dir().join(format!("chopsticks-hostile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("dest")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("dest/link")).unwrap();
        let file = |path: &[u8]| Item::Symlink {
            path: path.to_vec(),
            target: b"x".to_vec(),
        };
        let hostile: [&[u8]; 6] = [
            b"../escape",
            b"a/../../escape",
            b"/tmp/escape",
            b"./x",
            b"link/escape",
            b"",
        ];
        for path in hostile {
            let stream = tree(&[file(path)]);
            let err = receive(
                &root.join("dest"),
                &Apply::default(),
                &mut &stream[..],
                &|| true,
            )
            .unwrap_err();
            assert!(
                err.message.contains("would not stay inside"),
                "{path:?}: {err:?}"
            );
        }
        // A directory the stream names is checked before anything goes in it.
        let stream = tree(&[
            Item::Dir {
                path: b"link".to_vec(),
                mode: 0o755,
            },
            file(b"link/escape"),
        ]);
        let err = receive(
            &root.join("dest"),
            &Apply::default(),
            &mut &stream[..],
            &|| true,
        )
        .unwrap_err();
        assert!(err.message.contains("is in the way"), "{err:?}");
        assert!(!root.join("escape").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_fetch_drops_setuid_bits_unless_asked_for() {
        let fetch = Apply {
            strip_setid: true,
            ..Apply::default()
        };
        assert_eq!(fetch.mode_for(0o4755), 0o755);
        assert_eq!(fetch.mode_for(0o2775), 0o775);
        assert_eq!(Apply::default().mode_for(0o4755), 0o4755);
        let asked = Apply {
            mode: Some(0o4711),
            ..fetch.clone()
        };
        assert_eq!(asked.mode_for(0o644), 0o4711);
        // Directories too (a mode given is for files: directories keep theirs).
        assert_eq!(fetch.dir_mode_for(0o2775), 0o775);
        assert_eq!(asked.dir_mode_for(0o4755), 0o755);
        assert_eq!(Apply::default().dir_mode_for(0o2775), 0o2775);
    }

    /// Content that does not match the sender's SHA-256 never replaces the
    /// target, and leaves no temporary file.
    #[test]
    fn a_checksum_mismatch_keeps_the_old_file() {
        let root = std::env::temp_dir().join(format!("chopsticks-mismatch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let dest = root.join("f");
        fs::write(&dest, b"old").unwrap();
        let mut stream = Vec::new();
        let file = Item::File {
            path: vec![],
            mode: 0o644,
            size: 3,
        };
        write_item(&mut stream, &file).unwrap();
        stream.extend_from_slice(b"new");
        write_item(&mut stream, &Item::Sum([0; 32])).unwrap();
        write_item(&mut stream, &Item::End).unwrap();
        let err = receive(&dest, &Apply::default(), &mut &stream[..], &|| true).unwrap_err();
        assert!(err.message.contains("but the sender's is 0000"), "{err:?}");
        assert!(err.message.contains("keeps its old content"), "{err:?}");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1, "no temporary file");
        fs::remove_dir_all(&root).unwrap();
    }

    /// Content the sender vouches for, but not the one the caller
    /// expects, never replaces the target either.
    #[test]
    fn content_not_the_expected_keeps_the_old_file() {
        let root = std::env::temp_dir().join(format!("chopsticks-expected-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let dest = root.join("f");
        fs::write(&dest, b"old").unwrap();
        let mut stream = Vec::new();
        let file = Item::File {
            path: vec![],
            mode: 0o644,
            size: 3,
        };
        write_item(&mut stream, &file).unwrap();
        stream.extend_from_slice(b"new");
        write_item(&mut stream, &Item::Sum(Sha256::digest(b"new").into())).unwrap();
        write_item(&mut stream, &Item::End).unwrap();
        let expect = |sum: &[u8]| Apply {
            sha256: Some(hex(&Sha256::digest(sum).into())),
            ..Apply::default()
        };
        let err = receive(&dest, &expect(b"other"), &mut &stream[..], &|| true).unwrap_err();
        assert!(err.message.contains("not the"), "{err:?}");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1, "no temporary file");
        receive(&dest, &expect(b"new"), &mut &stream[..], &|| true).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        fs::remove_dir_all(&root).unwrap();
    }
}
