//! Directories held open by descriptor, and every write relative to one:
//! a directory that someone swaps for a symbolic link after it was opened
//! (or checked) cannot redirect what is written into it. What is opened
//! below a held directory is never reached through a link (`O_NOFOLLOW`
//! on each name); what is changed is changed on what was opened (`fchmod`,
//! `fchownat` without following, `renameat`, `linkat`, `unlinkat`).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A directory held open; `path` is how it was reached, for messages.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What `lstat` says of an entry: its kind, mode and owner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The kind of an entry, links not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Link,
    Other,
}

fn c(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name with a NUL byte"))
}

/// `rc` as an `io::Result`: -1 is the last OS error.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    match rc {
        -1 => Err(io::Error::last_os_error()),
        rc => Ok(rc),
    }
}

/// Retries a call that a signal interrupted.
fn retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match check(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One name inside a directory: not empty, no `/`, not `.` or `..`.
fn single(name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b.contains(&b'/') || b == b"." || b == b".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single name inside a directory"),
        ));
    }
    Ok(())
}

impl Dir {
    /// Opens the directory `path` as it is named (the caller named it:
    /// links in it are followed).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let name = c(path.as_os_str())?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: a valid NUL-terminated path.
        let fd = retry(|| unsafe { libc::open(name.as_ptr(), flags) })?;
        Ok(Dir {
            // SAFETY: `fd` was just opened and is owned here.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_owned(),
        })
    }

    /// How this directory was reached.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `name`'s path as this directory was reached, for messages.
    pub(crate) fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens `name` with `flags`, never through a link.
    fn open_at(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        single(name)?;
        let cname = c(name)?;
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        let fd = retry(|| unsafe {
            libc::openat(self.raw(), cname.as_ptr(), flags, mode as libc::c_uint)
        })?;
        // SAFETY: `fd` was just opened and is owned here.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// This directory's parent (`..`, which no link can be).
    fn open_parent(&self) -> io::Result<OwnedFd> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and the name "..".
        let fd = retry(|| unsafe { libc::openat(self.raw(), c"..".as_ptr(), flags) })?;
        // SAFETY: `fd` was just opened and is owned here.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory `name` inside this one, never through a link: a link
    /// there is an error (`ELOOP` or `ENOTDIR`).
    pub(crate) fn sub(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Dir {
            fd,
            path: self.join(name),
        })
    }

    /// What `name` is, not following a link; `None` when it is not there.
    pub(crate) fn entry(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        single(name)?;
        let cname = c(name)?;
        // SAFETY: a zeroed stat filled by fstatat on a valid descriptor.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = retry(|| unsafe {
            libc::fstatat(
                self.raw(),
                cname.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        });
        match rc {
            Ok(_) => Ok(Some(entry_of(&st))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What this directory itself is.
    pub(crate) fn own_entry(&self) -> io::Result<Entry> {
        // SAFETY: a zeroed stat filled by fstat on a valid descriptor.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        retry(|| unsafe { libc::fstat(self.raw(), &mut st) })?;
        Ok(entry_of(&st))
    }

    /// Makes the directory `name` (mode `mode` before the umask).
    pub(crate) fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        single(name)?;
        let cname = c(name)?;
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        retry(|| unsafe { libc::mkdirat(self.raw(), cname.as_ptr(), mode as libc::mode_t) })
            .map(drop)
    }

    /// Opens the regular file `name` to read it, never through a link.
    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let fd = self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        let file = File::from(fd);
        match file.metadata()?.is_file() {
            true => Ok(file),
            false => Err(io::Error::other("not a regular file")),
        }
    }

    /// Opens the regular file `name` to write over it, never through a
    /// link.
    pub(crate) fn open_for_write(&self, name: &OsStr) -> io::Result<File> {
        let file = File::from(self.open_at(name, libc::O_WRONLY | libc::O_NONBLOCK, 0)?);
        match file.metadata()?.is_file() {
            true => Ok(file),
            false => Err(io::Error::other("not a regular file")),
        }
    }

    /// Opens `name` to change its mode or owner, never through a link: an
    /// `O_PATH` descriptor, for [`set_mode`](Dir::set_mode) and
    /// [`set_owner`](Dir::set_owner).
    pub(crate) fn handle(&self, name: &OsStr) -> io::Result<OwnedFd> {
        self.open_at(name, libc::O_PATH, 0)
    }

    /// An unnamed file in this directory (`O_TMPFILE`), mode 600.
    pub(crate) fn tempfile(&self) -> io::Result<File> {
        let flags = libc::O_RDWR | libc::O_TMPFILE | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and the name ".".
        let fd = retry(|| unsafe { libc::openat(self.raw(), c".".as_ptr(), flags, 0o600) })?;
        // SAFETY: `fd` was just opened and is owned here.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A new file `name` (it must not exist), mode 600.
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        Ok(File::from(self.open_at(name, flags, 0o600)?))
    }

    /// Gives the open (unnamed) `file` the name `name` here.
    pub(crate) fn link_file(&self, file: &File, name: &OsStr) -> io::Result<()> {
        single(name)?;
        let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(io::Error::other)?;
        let to = c(name)?;
        // SAFETY: valid NUL-terminated paths and a valid directory descriptor.
        retry(|| unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                self.raw(),
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        })
        .map(drop)
    }

    /// Gives the file `name` here a second name, `to_name` in `to` (a hard
    /// link, never through a symbolic link).
    pub(crate) fn link_into(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> io::Result<()> {
        single(name)?;
        single(to_name)?;
        let (from, into) = (c(name)?, c(to_name)?);
        // SAFETY: valid directory descriptors and NUL-terminated names.
        retry(|| unsafe { libc::linkat(self.raw(), from.as_ptr(), to.raw(), into.as_ptr(), 0) })
            .map(drop)
    }

    /// Renames `from` to `to`, both in this directory.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        single(from)?;
        single(to)?;
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: a valid directory descriptor and NUL-terminated names.
        retry(|| unsafe { libc::renameat(self.raw(), f.as_ptr(), self.raw(), t.as_ptr()) })
            .map(drop)
    }

    /// Removes the file or link `name` (a directory: `dir`).
    pub(crate) fn unlink(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        single(name)?;
        let cname = c(name)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: a valid directory descriptor and NUL-terminated name.
        retry(|| unsafe { libc::unlinkat(self.raw(), cname.as_ptr(), flags) }).map(drop)
    }

    /// Makes `name` a symbolic link to `target`.
    pub(crate) fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        single(name)?;
        let (t, n) = (c(target.as_os_str())?, c(name)?);
        // SAFETY: valid NUL-terminated strings and directory descriptor.
        retry(|| unsafe { libc::symlinkat(t.as_ptr(), self.raw(), n.as_ptr()) }).map(drop)
    }

    /// Where the link `name` points.
    pub(crate) fn readlink(&self, name: &OsStr) -> io::Result<PathBuf> {
        single(name)?;
        let cname = c(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::readlinkat(
                self.raw(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        buf.truncate(n);
        Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
    }

    /// Gives `name` the owner `uid`/`gid` (`None` keeps one), not
    /// following a link.
    pub(crate) fn set_owner(
        &self,
        name: &OsStr,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> io::Result<()> {
        single(name)?;
        let cname = c(name)?;
        let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
        // SAFETY: a valid directory descriptor and NUL-terminated name; -1
        // (u32::MAX) keeps an ID.
        retry(|| unsafe {
            libc::fchownat(self.raw(), cname.as_ptr(), u, g, libc::AT_SYMLINK_NOFOLLOW)
        })
        .map(drop)
    }

    /// Gives `name` the permission bits `mode`, not following a link (the
    /// kernel has no `lchmod`: the entry is opened `O_PATH | O_NOFOLLOW`
    /// and changed through its descriptor; a link is refused).
    pub(crate) fn set_mode(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let fd = self.handle(name)?;
        set_mode_of(&fd, mode)
    }

    /// The names in this directory (not `.` and `..`).
    pub(crate) fn list(&self) -> io::Result<Vec<std::ffi::OsString>> {
        // The magic link names the very directory this descriptor holds.
        let entries = std::fs::read_dir(format!("/proc/self/fd/{}", self.raw()))?;
        entries.map(|e| e.map(|e| e.file_name())).collect()
    }

    /// Makes the directory's entries durable (`fsync`).
    pub(crate) fn sync(&self) -> io::Result<()> {
        // SAFETY: a valid descriptor.
        retry(|| unsafe { libc::fsync(self.raw()) }).map(drop)
    }

    /// Flushes the filesystem the directory is on (`syncfs`).
    pub(crate) fn sync_filesystem(&self) -> io::Result<()> {
        // SAFETY: a valid descriptor.
        retry(|| unsafe { libc::syncfs(self.raw()) }).map(drop)
    }

    /// Gives the directory itself the permission bits `mode`.
    pub(crate) fn set_own_mode(&self, mode: u32) -> io::Result<()> {
        // SAFETY: a valid descriptor.
        retry(|| unsafe { libc::fchmod(self.raw(), (mode & 0o7777) as libc::mode_t) }).map(drop)
    }

    /// Gives the directory itself an owner (`None` keeps one).
    pub(crate) fn set_own_owner(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
        // SAFETY: a valid descriptor; -1 keeps an ID.
        retry(|| unsafe { libc::fchown(self.raw(), u, g) }).map(drop)
    }
}

/// Gives what `fd` (an `O_PATH` descriptor, or any other) refers to the
/// permission bits `mode`: through `/proc/self/fd`, which names the very
/// file the descriptor holds (a link was refused when it was opened).
pub(crate) fn set_mode_of(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    let path =
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path.
    retry(|| unsafe { libc::chmod(path.as_ptr(), (mode & 0o7777) as libc::mode_t) }).map(drop)
}

/// The most links one path may take through (as the kernel's `ELOOP`).
const MAX_LINKS: usize = 40;

/// The directory `path` is in, held open, and `path`'s last name (never
/// followed: the caller decides what an entry that is a link means).
///
/// The directories on the way are opened one name at a time from `/` (or
/// the working directory, for a relative path); a symbolic link among them
/// is followed only when root or this program's user owns it: a link
/// someone else owns is theirs to swap, and is refused.
///
/// # Errors
/// When a directory on the way is missing or not reachable, is not a
/// directory, or is a link someone else owns; when `path` names no entry
/// (`/`, or it ends in `..`).
pub(crate) fn parent_and_name(path: &Path) -> io::Result<(Dir, std::ffi::OsString)> {
    let name = match path.file_name() {
        Some(name) if !path.as_os_str().as_bytes().ends_with(b"/..") => name.to_owned(),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", path.display()),
            ))
        }
    };
    let parent = path.parent().unwrap_or(Path::new(""));
    Ok((resolve_dir(parent)?, name))
}

/// The directory `path`, held open, reached as [`parent_and_name`] reaches
/// a file's directory.
///
/// # Errors
/// As [`parent_and_name`].
pub(crate) fn resolve_dir(path: &Path) -> io::Result<Dir> {
    use std::path::Component;
    let start = |absolute: bool| Dir::open(Path::new(if absolute { "/" } else { "." }));
    let mut dir = start(path.is_absolute())?;
    // The names still to walk, last first; links push their targets' names.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push = |todo: &mut Vec<_>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(n.to_owned()),
                Component::ParentDir => todo.push("..".into()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    };
    push(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            let fd = dir.open_parent()?;
            let walked = dir.path.parent().unwrap_or(Path::new("/")).to_owned();
            dir = Dir { fd, path: walked };
            continue;
        }
        match dir.entry(&name)?.map(|e| e.kind) {
            Some(Kind::Dir) => {
                let fd = dir.open_at(&name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                dir = Dir {
                    fd,
                    path: dir.join(&name),
                };
            }
            Some(Kind::Link) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let Some(target) = trusted_link(&dir, &name)? else {
                    // Swapped for something else since: look again.
                    todo.push(name);
                    continue;
                };
                if target.is_absolute() {
                    dir = start(true)?;
                }
                push(&mut todo, &target);
            }
            Some(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            None => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
    dir.path = path.to_owned();
    Ok(dir)
}

/// What is at `path` (not following a link there); `None` when nothing is,
/// or its directory is not there. Reached as [`parent_and_name`] reaches it.
///
/// # Errors
/// As [`parent_and_name`], but for a missing directory.
pub(crate) fn entry_at(path: &Path) -> io::Result<Option<Entry>> {
    match parent_and_name(path) {
        Ok((dir, name)) => dir.entry(&name),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The content of the regular file `path`, never read through a link (at
/// `path` or, but for root's and this user's, on the way to it).
///
/// # Errors
/// As [`parent_and_name`]; when it is not a regular file.
pub(crate) fn read_at(path: &Path) -> io::Result<Vec<u8>> {
    let (dir, name) = parent_and_name(path)?;
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut dir.open_file(&name)?, &mut content)?;
    Ok(content)
}

/// The path a chain of links at `path` ends in (`path` itself when it is
/// no link), each followed only when root or this program's user owns it,
/// as on the way to any file.
///
/// # Errors
/// As [`parent_and_name`]; a link someone else owns; more than 40 links.
pub(crate) fn follow_at(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_owned();
    for _ in 0..MAX_LINKS {
        let (dir, name) = parent_and_name(&path)?;
        if dir.entry(&name)?.is_none_or(|e| e.kind != Kind::Link) {
            return Ok(path);
        }
        let Some(target) = trusted_link(&dir, &name)? else {
            continue;
        };
        path = match target.is_absolute() {
            true => target,
            false => path.parent().unwrap_or(Path::new("")).join(target),
        };
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Where the link `name` of `dir` points, when root or this program's
/// user owns it; `None` when `name` is no link. The link is held while its
/// owner is checked and it is read: both are one inode's.
///
/// # Errors
/// A link someone else owns.
fn trusted_link(dir: &Dir, name: &OsStr) -> io::Result<Option<PathBuf>> {
    let link = dir.handle(name)?;
    // SAFETY: a zeroed stat filled by fstat on a valid descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::fstat(link.as_raw_fd(), &mut st) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Ok(None);
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if st.st_uid != 0 && st.st_uid != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symbolic link owned by uid {}, who could point it elsewhere at any \
                 time: it is not followed (make it root's, or name what it points to)",
                dir.join(name).display(),
                st.st_uid
            ),
        ));
    }
    readlink_fd(&link).map(Some)
}

/// Where the link held by `fd` (`O_PATH | O_NOFOLLOW`) points.
fn readlink_fd(fd: &OwnedFd) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is writable for its length; "" names `fd` itself.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

fn entry_of(st: &libc::stat) -> Entry {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Link,
        _ => Kind::Other,
    };
    Entry {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn nothing_below_a_held_directory_is_reached_through_a_link() {
        let root = std::env::temp_dir().join(format!("cs-at-{}", std::process::id()));
        let outside = root.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root.join("dest")).unwrap();
        let dest = Dir::open(&root.join("dest")).unwrap();
        dest.mkdir(OsStr::new("sub"), 0o755).unwrap();
        let sub = dest.sub(OsStr::new("sub")).unwrap();
        // Swapped for a link after it was opened: the held one is written.
        std::fs::rename(root.join("dest/sub"), root.join("dest/moved")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dest/sub")).unwrap();
        let f = sub.create_new(OsStr::new("f")).unwrap();
        drop(f);
        assert!(root.join("dest/moved/f").exists() && !outside.join("f").exists());
        // Opening it again refuses the link.
        assert!(dest.sub(OsStr::new("sub")).is_err());
        assert!(
            dest.handle(OsStr::new("sub")).is_ok(),
            "O_PATH opens the link itself"
        );
        assert!(
            dest.set_mode(OsStr::new("sub"), 0o777).is_err() || {
                // chmod through an O_PATH descriptor of a link: refused by the kernel.
                std::fs::metadata(&outside).unwrap().permissions().mode() & 0o777 != 0o777
            }
        );
        assert_eq!(
            dest.entry(OsStr::new("sub")).unwrap().unwrap().kind,
            Kind::Link
        );
        assert!(dest.sub(OsStr::new("..")).is_err());
        std::fs::remove_dir_all(root).unwrap();
    }
}
