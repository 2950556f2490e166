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

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A file being written for `dest`.
pub(crate) struct Staged {
    file: File,
    dest: PathBuf,
    /// Its name, when it has one already (no `O_TMPFILE`).
    named: Option<PathBuf>,
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

/// A temporary name beside `dest`: `.NAME.chopsticks-PID-N.tmp`.
pub(crate) fn temp_name(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = dest.file_name().unwrap_or(OsStr::new("file")).as_bytes();
    // Within NAME_MAX (255) whatever the name's length.
    let base = OsStr::from_bytes(&base[..base.len().min(160)]);
    let mut name = OsString::from(".");
    name.push(base);
    name.push(format!(".chopsticks-{}-{n}.tmp", std::process::id()));
    parent_of(dest).join(name)
}

/// A temporary file got its name: if this process dies before it is
/// renamed or removed, the janitor removes it.
fn watch(temp: &Path) {
    let absolute = std::env::current_dir().map(|d| d.join(temp));
    if let Ok(path) = absolute {
        if let Err(e) = chopsticks_agent::janitor::watch(&path) {
            log::debug!("chopsticks: {} is not watched: {e}", path.display());
        }
    }
}

/// A temporary file was renamed or removed.
fn forget(temp: &Path) {
    if let Ok(path) = std::env::current_dir().map(|d| d.join(temp)) {
        chopsticks_agent::janitor::forget(&path);
    }
}

/// Removes a temporary file.
fn remove(temp: &Path) {
    let _ = fs::remove_file(temp);
    forget(temp);
}

/// Whether `/proc/self/fd` can name an open file for `linkat`.
fn proc_fd() -> bool {
    static PROC: OnceLock<bool> = OnceLock::new();
    *PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

impl Staged {
    /// Starts a temporary file beside `dest`.
    ///
    /// # Errors
    /// When its directory is missing or not writable.
    pub(crate) fn create(dest: &Path) -> io::Result<Staged> {
        let dir = parent_of(dest);
        if proc_fd() {
            let unnamed = OpenOptions::new()
                .read(true)
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_TMPFILE)
                .open(dir);
            match unnamed {
                Ok(file) => {
                    return Ok(Staged {
                        file,
                        dest: dest.to_owned(),
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
        let name = temp_name(dest);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&name)?;
        watch(&name);
        Ok(Staged {
            file,
            dest: dest.to_owned(),
            named: Some(name),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
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
            .set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        if sync {
            self.file.sync_all()?;
        }
        let temp = match self.named.take() {
            Some(name) => name,
            None => {
                let name = temp_name(&self.dest);
                let from = cstr(format!("/proc/self/fd/{}", self.file.as_raw_fd()).as_ref())?;
                let to = cstr(name.as_os_str())?;
                // SAFETY: both are valid NUL-terminated paths.
                let linked = unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        from.as_ptr(),
                        libc::AT_FDCWD,
                        to.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                };
                if linked != 0 {
                    return Err(io::Error::last_os_error());
                }
                // A file renamed at once needs no janitor; one that waits
                // for the rest of its tree does.
                if !sync {
                    watch(&name);
                }
                name
            }
        };
        Ok(Sealed {
            temp: Some(temp),
            dest: std::mem::take(&mut self.dest),
            mode,
            owner,
            link: false,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(name) = &self.named {
            remove(name);
        }
    }
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes().to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// A complete file under its temporary name, ready to replace its target;
/// dropped without [`commit`](Sealed::commit), it is removed.
pub(crate) struct Sealed {
    temp: Option<PathBuf>,
    dest: PathBuf,
    mode: u32,
    owner: Ownership,
    /// A symbolic link: never written in place.
    link: bool,
}

impl Sealed {
    /// A symbolic link made under a temporary name.
    pub(crate) fn adopt(temp: PathBuf, dest: PathBuf) -> Sealed {
        watch(&temp);
        Sealed {
            temp: Some(temp),
            dest,
            mode: 0,
            owner: Ownership::default(),
            link: true,
        }
    }

    pub(crate) fn temp_for(dest: &Path) -> PathBuf {
        temp_name(dest)
    }

    pub(crate) fn dest(&self) -> &Path {
        &self.dest
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
        match fs::rename(&temp, &self.dest) {
            Ok(()) => {
                forget(&temp);
                Ok(false)
            }
            Err(e) if !self.link && matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EXDEV)) => {
                let written = self.write_in_place(&temp);
                remove(&temp);
                written.map(|()| true)
            }
            Err(e) => {
                remove(&temp);
                Err(e)
            }
        }
    }

    /// The target cannot be replaced: overwrite its content. Its space is
    /// reserved first, so a full disk fails before the old content is
    /// touched; then the content is written over it and cut to length.
    fn write_in_place(&self, temp: &Path) -> io::Result<()> {
        let mut from = File::open(temp)?;
        let len = from.metadata()?.len();
        let mut to = OpenOptions::new().write(true).open(&self.dest)?;
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
        io::copy(&mut from, &mut to)?;
        to.set_len(len)?;
        if self.owner.uid.is_some() || self.owner.gid.is_some() {
            std::os::unix::fs::fchown(&to, self.owner.uid, self.owner.gid)?;
        }
        if self.mode != 0 {
            to.set_permissions(fs::Permissions::from_mode(self.mode & 0o7777))?;
        }
        to.sync_all()
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            remove(temp);
        }
    }
}

/// Flushes the filesystem `dir` is on (`syncfs`): one call makes a whole
/// tree's files durable.
///
/// # Errors
/// When the directory cannot be opened or the disk refuses.
pub(crate) fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let dir = File::open(dir)?;
    // SAFETY: a valid open descriptor.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the renames in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) {
    // Some filesystems refuse fsync on a directory; the data is durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// A path from the bytes the wire carries.
pub(crate) fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_file_replaces_its_target_whole() {
        let dir = scratch("whole");
        let dest = dir.join("f");
        fs::write(&dest, "old").unwrap();
        let mut staged = Staged::create(&dest).unwrap();
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
        let mut staged = Staged::create(&dest).unwrap();
        staged.file().write_all(b"half").unwrap();
        drop(staged);
        let mut staged = Staged::create(&dest).unwrap();
        staged.file().write_all(b"sealed, not committed").unwrap();
        drop(staged.seal(0o644, Ownership::default(), false).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(leftovers(&dir), Vec::<String>::new());
        fs::remove_dir_all(dir).unwrap();
    }
}
