//! Writing a file so that its target never holds half of it: the content
//! goes to a temporary file beside the target, is made durable, and is
//! renamed into place.
//!
//! The temporary file is unnamed (`O_TMPFILE`) while it is written, so an
//! agent killed in the middle leaves nothing behind; it gets a name
//! (`.NAME.chopsticks-PID-N.tmp`) only once its content is complete. Where
//! the kernel or filesystem has no `O_TMPFILE`, it is named from the start.
//! Where a rename cannot replace the target (a bind-mounted file such as a
//! container's `/etc/hosts` gives `EBUSY`; `EXDEV`), the content is written
//! into the target in place instead, and the caller is told.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::at::Dir;

/// A file being written for the entry `name` of `dir`.
pub(crate) struct Staged {
    file: File,
    dir: Arc<Dir>,
    name: OsString,
    /// Its temporary name, when it has one already (no `O_TMPFILE`).
    named: Option<OsString>,
}

/// Owner and group to give a file; `None` keeps the writer's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ownership {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The directory `path` is in (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary name beside `name`: `.NAME.chopsticks-PID-N.tmp`.
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = match name.as_bytes() {
        b"" => b"file".as_slice(),
        b => b,
    };
    // Within NAME_MAX (255) whatever the name's length.
    let base = OsStr::from_bytes(&base[..base.len().min(160)]);
    let mut temp = OsString::from(".");
    temp.push(base);
    temp.push(format!(".chopsticks-{}-{n}.tmp", std::process::id()));
    temp
}

/// The path the janitor knows a temporary file by (as `dir` was reached).
fn janitor_path(dir: &Dir, temp: &OsStr) -> Option<PathBuf> {
    std::env::current_dir().ok().map(|d| d.join(dir.join(temp)))
}

/// A temporary file got its name: if this process dies before it is
/// renamed or removed, the janitor removes it.
fn watch(dir: &Dir, temp: &OsStr) {
    if let Some(path) = janitor_path(dir, temp) {
        if let Err(e) = chopsticks_agent::janitor::watch(&path) {
            log::debug!("chopsticks: {} is not watched: {e}", path.display());
        }
    }
}

/// A temporary file was renamed or removed.
fn forget(dir: &Dir, temp: &OsStr) {
    if let Some(path) = janitor_path(dir, temp) {
        chopsticks_agent::janitor::forget(&path);
    }
}

/// Removes a temporary file.
fn remove(dir: &Dir, temp: &OsStr) {
    let _ = dir.unlink(temp, false);
    forget(dir, temp);
}

/// Whether `/proc/self/fd` can name an open file for `linkat`.
fn proc_fd() -> bool {
    static PROC: OnceLock<bool> = OnceLock::new();
    *PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

impl Staged {
    /// Starts a temporary file in `dir` for its entry `name`.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub(crate) fn create(dir: &Arc<Dir>, name: &OsStr) -> io::Result<Staged> {
        if proc_fd() {
            match dir.tempfile() {
                Ok(file) => {
                    return Ok(Staged {
                        file,
                        dir: Arc::clone(dir),
                        name: name.to_owned(),
                        named: None,
                    })
                }
                // No O_TMPFILE here (old kernel, some filesystems).
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        let temp = temp_name(name);
        let file = dir.create_new(&temp)?;
        watch(dir, &temp);
        Ok(Staged {
            file,
            dir: Arc::clone(dir),
            name: name.to_owned(),
            named: Some(temp),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Starts writing the `len` bytes at `offset` back to the disk, and
    /// waits until the range two before them is on it: a big file goes to
    /// the disk while it arrives, and the fsync that seals it finds little
    /// left to do (at most three ranges are dirty; the one in between
    /// absorbs a slow moment of the disk without stalling the stream). Linux only
    /// (`sync_file_range`); elsewhere, and where the filesystem refuses,
    /// nothing happens and that fsync does all the work.
    pub(crate) fn write_back(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        {
            let fd = self.file.as_raw_fd();
            let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
            // SAFETY: sync_file_range only reads its integer arguments; a
            // failure (EINVAL, ESPIPE ...) is left to the final fsync.
            unsafe {
                libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE);
                if offset >= 2 * len {
                    libc::sync_file_range(
                        fd,
                        offset - 2 * len,
                        len,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    );
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }

    /// Gives the complete content its mode and owner, makes it durable
    /// when `sync` (a tree syncs its filesystem once instead), and names it
    /// beside the target.
    ///
    /// # Errors
    /// When the mode or owner cannot be set, or the disk refuses.
    pub(crate) fn seal(mut self, mode: u32, owner: Ownership, sync: bool) -> io::Result<Sealed> {
        self.file.flush()?;
        // The owner first: changing it clears the setuid and setgid bits.
        if owner.uid.is_some() || owner.gid.is_some() {
            std::os::unix::fs::fchown(&self.file, owner.uid, owner.gid)?;
        }
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        if sync {
            self.file.sync_all()?;
        }
        let temp = match self.named.take() {
            Some(temp) => temp,
            None => {
                let temp = temp_name(&self.name);
                self.dir.link_file(&self.file, &temp)?;
                // A file renamed at once needs no janitor; one that waits
                // for the rest of its tree does.
                if !sync {
                    watch(&self.dir, &temp);
                }
                temp
            }
        };
        Ok(Sealed {
            temp: Some(temp),
            dir: Arc::clone(&self.dir),
            name: std::mem::take(&mut self.name),
            mode,
            owner,
            link: false,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = &self.named {
            remove(&self.dir, temp);
        }
    }
}

/// A complete file under its temporary name in its directory, ready to
/// replace its target; dropped without [`commit`](Sealed::commit), it is
/// removed.
pub(crate) struct Sealed {
    temp: Option<OsString>,
    dir: Arc<Dir>,
    name: OsString,
    mode: u32,
    owner: Ownership,
    /// A symbolic link: never written in place.
    link: bool,
}

impl Sealed {
    /// Makes a symbolic link to `target` under a temporary name in `dir`,
    /// to replace its entry `name`.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub(crate) fn link(dir: &Arc<Dir>, name: &OsStr, target: &Path) -> io::Result<Sealed> {
        let temp = temp_name(name);
        dir.symlink(target, &temp)?;
        watch(dir, &temp);
        Ok(Sealed {
            temp: Some(temp),
            dir: Arc::clone(dir),
            name: name.to_owned(),
            mode: 0,
            owner: Ownership::default(),
            link: true,
        })
    }

    /// The target's path, as its directory was reached (for messages).
    pub(crate) fn dest(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Its temporary name beside the target, watched by the janitor from
    /// now on (what waits before its commit, a validation, must not be
    /// left behind by an agent killed meanwhile).
    pub(crate) fn waiting(&self) -> Option<&OsStr> {
        let temp = self.temp.as_deref()?;
        watch(&self.dir, temp);
        Some(temp)
    }

    /// The directory it goes into.
    pub(crate) fn dir(&self) -> &Arc<Dir> {
        &self.dir
    }

    /// Renames the file into place; returns `true` when it had to be
    /// written into the target in place instead.
    ///
    /// # Errors
    /// When neither works; the target keeps its old content.
    pub(crate) fn commit(mut self) -> io::Result<bool> {
        let Some(temp) = self.temp.take() else {
            return Ok(false);
        };
        match self.dir.rename(&temp, &self.name) {
            Ok(()) => {
                forget(&self.dir, &temp);
                Ok(false)
            }
            Err(e) if !self.link && matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EXDEV)) => {
                let written = self.write_in_place(&temp);
                remove(&self.dir, &temp);
                written.map(|()| true)
            }
            Err(e) => {
                remove(&self.dir, &temp);
                Err(e)
            }
        }
    }

    /// The target cannot be replaced: overwrite its content. Its space is
    /// reserved first, so a full disk fails before the old content is
    /// touched; then the content is written over it and cut to length.
    /// Neither file is reached through a link.
    fn write_in_place(&self, temp: &OsStr) -> io::Result<()> {
        let mut from = self.dir.open_file(temp)?;
        let len = from.metadata()?.len();
        let mut to = self.dir.open_for_write(&self.name)?;
        // SAFETY: fallocate on a valid descriptor with integer arguments.
        let reserved = unsafe { libc::fallocate(to.as_raw_fd(), 0, 0, len as libc::off_t) };
        if reserved != 0 {
            let e = io::Error::last_os_error();
            // A filesystem without fallocate goes on without the reserve.
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e);
            }
        }
        to.rewind()?;
        io::copy(&mut (&mut from).take(len), &mut to)?;
        to.set_len(len)?;
        if self.owner.uid.is_some() || self.owner.gid.is_some() {
            std::os::unix::fs::fchown(&to, self.owner.uid, self.owner.gid)?;
        }
        if self.mode != 0 {
            to.set_permissions(std::fs::Permissions::from_mode(self.mode & 0o7777))?;
        }
        to.sync_all()
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            remove(&self.dir, temp);
        }
    }
}

/// A path from the bytes the wire carries.
pub(crate) fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chopsticks-stage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("chopsticks-"))
            .collect()
    }

    fn held(dir: &Path) -> Arc<Dir> {
        Arc::new(Dir::open(dir).unwrap())
    }

    #[test]
    fn a_file_replaces_its_target_whole() {
        let dir = scratch("whole");
        let dest = dir.join("f");
        fs::write(&dest, "old").unwrap();
        let mut staged = Staged::create(&held(&dir), OsStr::new("f")).unwrap();
        staged.file().write_all(b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        let sealed = staged.seal(0o640, Ownership::default(), true).unwrap();
        assert!(!sealed.commit().unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(leftovers(&dir), Vec::<String>::new());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_abandoned_file_leaves_the_target_and_no_temporary() {
        let dir = scratch("abandon");
        let dest = dir.join("f");
        fs::write(&dest, "old").unwrap();
        let at = held(&dir);
        let mut staged = Staged::create(&at, OsStr::new("f")).unwrap();
        staged.file().write_all(b"half").unwrap();
        drop(staged);
        let mut staged = Staged::create(&at, OsStr::new("f")).unwrap();
        staged.file().write_all(b"sealed, not committed").unwrap();
        drop(staged.seal(0o644, Ownership::default(), false).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(leftovers(&dir), Vec::<String>::new());
        fs::remove_dir_all(dir).unwrap();
    }
}
