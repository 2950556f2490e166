//! The means to write: every change an operation makes goes through a
//! [`Writer`], which only [`Plan::run`](super::Plan::run) in
//! [`Mode::Apply`](super::Mode::Apply) makes.
//!
//! Every write is made relative to the directory the target is in, held
//! open: the directories on the way are reached one name at a time, a link
//! among them only when root or this program's user owns it (someone
//! else's link is theirs to swap), and the target itself is never followed
//! (a link there is refused, or replaced only by [`Writer::symlink`]).

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::backup;
use super::landing::{self, Landing};
use super::process::Program;
use super::OpError;
use crate::files::{self, Dir, Kind, Ownership, Sealed, Staged};

/// The most input [`Writer::run_with_input`] gives a program (what a pipe
/// holds on Linux by default): a bound on what is kept in memory. It is
/// written as the program reads it, within its time limit.
pub(crate) const MAX_INPUT: usize = 64 << 10;

/// Owner and group by name or numeric ID; `None` leaves them as they are
/// (new files: the writing user's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    /// The owning user.
    pub user: Option<String>,
    /// The owning group.
    pub group: Option<String>,
}

/// The builder methods `owner` and `group` of a spec with an `owner:
/// Owner` field, documented once for all of them.
macro_rules! owner_options {
    ($spec:ident) => {
        impl $spec {
            /// Its owner, by name or numeric ID.
            pub fn owner(mut self, user: impl Into<String>) -> $spec {
                self.owner.user = Some(user.into());
                self
            }

            /// Its group, by name or numeric ID.
            pub fn group(mut self, group: impl Into<String>) -> $spec {
                self.owner.group = Some(group.into());
                self
            }
        }
    };
}
pub(crate) use owner_options;

impl Owner {
    /// The IDs of the names, on this host.
    pub(crate) fn ids(&self, op: &str, target: &Path) -> Result<Ownership, OpError> {
        let id = |name: &Option<String>, group| {
            name.as_deref()
                .map(|n| files::resolve(n, group))
                .transpose()
                .map_err(|e| OpError::new(op, target.display(), e.to_string()))
        };
        Ok(Ownership {
            uid: id(&self.user, false)?,
            gid: id(&self.group, true)?,
        })
    }
}

/// What writing takes. Only [`Plan::run`](super::Plan::run) in
/// [`Mode::Apply`](super::Mode::Apply) makes one, so code that writes
/// through it cannot write in [`Mode::Check`](super::Mode::Check).
#[derive(Debug)]
pub struct Writer {
    /// Where the last write kept the old content, for the plan's change.
    backup: std::sync::Mutex<Option<std::path::PathBuf>>,
}

fn failed(op: &str, path: &Path, doing: &str, e: &std::io::Error) -> OpError {
    OpError::new(
        op,
        path.display(),
        format!("{doing}: {}", files::describe(e)),
    )
}

/// The directory `path` is in, held open, and its name there.
fn target(op: &str, path: &Path) -> Result<(Dir, std::ffi::OsString), OpError> {
    files::parent_and_name(path).map_err(|e| failed(op, path, "cannot reach its directory", &e))
}

/// A new file for the entry `name` of `dir`, filled by `fill`, with its
/// mode and owner, durable, under a temporary name beside its target.
fn sealed_in(
    dir: &Arc<Dir>,
    name: &OsStr,
    mode: u32,
    ids: Ownership,
    fill: impl FnOnce(&mut std::fs::File) -> Result<(), OpError>,
) -> Result<Sealed, OpError> {
    let path = dir.join(name);
    let mut staged = Staged::create(dir, name)
        .map_err(|e| failed("write", &path, "cannot create a temporary file", &e))?;
    fill(staged.file())?;
    staged
        .seal(mode, ids, true)
        .map_err(|e| failed("write", &path, "cannot finish the file", &e))
}

impl Writer {
    pub(super) fn new() -> Writer {
        Writer {
            backup: std::sync::Mutex::new(None),
        }
    }

    /// Where a write kept the old content, if one did.
    pub(super) fn take_backup(&self) -> Option<std::path::PathBuf> {
        self.backup.lock().ok()?.take()
    }

    /// Replaces `path` with `content` atomically (a temporary file beside
    /// it, fsynced, renamed into place), with `mode` and `owner`.
    ///
    /// # Errors
    /// When the directory is missing or not writable, the disk is full,
    /// or `path` is a symbolic link (an operation that follows links
    /// writes where the link points).
    pub fn write_file(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        owner: &Owner,
    ) -> Result<(), OpError> {
        self.write_with(path, mode, owner, |file| {
            file.write_all(content)
                .map_err(|e| failed("write", path, "cannot write", &e))
        })
    }

    /// Replaces `path` atomically, as [`write_file`](Writer::write_file)
    /// does, with what `fill` writes into the new file (an unnamed
    /// temporary file in `path`'s directory, held open). When `fill`
    /// fails, nothing replaces `path` and no temporary file is left.
    ///
    /// # Errors
    /// As [`write_file`](Writer::write_file), and `fill`'s.
    pub fn write_with(
        &self,
        path: &Path,
        mode: u32,
        owner: &Owner,
        fill: impl FnOnce(&mut std::fs::File) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        let landing = Landing::default();
        self.land_with("write", path, (mode, owner), (&landing, false), fill)
    }

    /// As [`write_file`](Writer::write_file), and as `landing` says: the
    /// new content validated beside the target before it replaces it (a
    /// failure leaves the target as it was), the old content kept as a
    /// backup (its path is in the change). A failed validation is an
    /// error of `op`; a `secret` one's output is not quoted.
    pub(crate) fn land(
        &self,
        op: &str,
        path: &Path,
        content: &[u8],
        (mode, owner): (u32, &Owner),
        landing: &Landing,
        secret: bool,
    ) -> Result<(), OpError> {
        self.land_with(op, path, (mode, owner), (landing, secret), |file| {
            file.write_all(content)
                .map_err(|e| failed("write", path, "cannot write", &e))
        })
    }

    /// [`land`](Writer::land) with what `fill` writes.
    fn land_with(
        &self,
        validating: &str,
        path: &Path,
        (mode, owner): (u32, &Owner),
        (landing, secret): (&Landing, bool),
        fill: impl FnOnce(&mut std::fs::File) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        let op = "write";
        let ids = owner.ids(op, path)?;
        let (dir, name) = target(op, path)?;
        let old = dir.entry(&name).ok().flatten();
        if old.as_ref().is_some_and(|e| e.kind == Kind::Link) {
            return Err(OpError::new(
                op,
                path.display(),
                "is a symbolic link: it is not replaced by a file (follow it, or remove it first)",
            ));
        }
        let dir = Arc::new(dir);
        let sealed = sealed_in(&dir, &name, mode, ids, fill)?;
        if let (Some(command), Some(temp)) = (&landing.validate, sealed.waiting()) {
            // On failure the sealed file is dropped, and removed: the
            // target stays as it was.
            let shown = path.display().to_string();
            landing::validate_beside(validating, &shown, command, (&dir, &name, temp), secret)?;
        }
        if let Some(old) = old.filter(|e| landing.backup && e.kind == Kind::File) {
            let kept = backup::back_up(&dir, &name, &old)
                .map_err(|e| failed(op, path, "cannot keep a backup of the old content", &e))?;
            if let Ok(mut slot) = self.backup.lock() {
                *slot = Some(kept);
            }
        }
        sealed
            .commit()
            .map_err(|e| failed(op, path, "cannot move the file into place", &e))?;
        // Some filesystems refuse fsync on a directory; the data is durable.
        let _ = dir.sync();
        Ok(())
    }

    /// Creates the file `name` in the held directory `dir` (replacing
    /// what is there, a link itself rather than where it points) with what
    /// `fill` writes, atomically and durably, as
    /// [`write_with`](Writer::write_with) does.
    #[cfg(feature = "archive")]
    pub(crate) fn file_in(
        &self,
        dir: &Arc<Dir>,
        name: &OsStr,
        mode: u32,
        ids: Ownership,
        fill: impl FnOnce(&mut std::fs::File) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        sealed_in(dir, name, mode, ids, fill)?
            .commit()
            .map(drop)
            .map_err(|e| {
                failed(
                    "write",
                    &dir.join(name),
                    "cannot move the file into place",
                    &e,
                )
            })
    }

    /// Creates the directory `name` in the held directory `dir`, mode 700
    /// (the caller gives it its own mode once it is filled), and opens it.
    #[cfg(feature = "archive")]
    pub(crate) fn dir_in(&self, dir: &Dir, name: &OsStr, ids: Ownership) -> Result<Dir, OpError> {
        let path = dir.join(name);
        dir.mkdir(name, 0o700)
            .map_err(|e| failed("mkdir", &path, "cannot create", &e))?;
        if ids.uid.is_some() || ids.gid.is_some() {
            dir.set_owner(name, ids.uid, ids.gid)
                .map_err(|e| failed("chown", &path, "cannot change the owner", &e))?;
        }
        dir.sub(name)
            .map_err(|e| failed("mkdir", &path, "cannot open what was created", &e))
    }

    /// Gives the held directory `dir` the permission bits `mode`.
    #[cfg(feature = "archive")]
    pub(crate) fn dir_mode(&self, dir: &Dir, mode: u32) -> Result<(), OpError> {
        dir.set_own_mode(mode)
            .map_err(|e| failed("chmod", dir.path(), "cannot change the mode", &e))
    }

    /// Makes `name` in the held directory `dir` a symbolic link to
    /// `target`, replacing what is there atomically.
    pub(crate) fn link_in(
        &self,
        dir: &Dir,
        name: &OsStr,
        target: &Path,
        ids: Ownership,
    ) -> Result<(), OpError> {
        let path = dir.join(name);
        let temp = files::temp_name(name);
        dir.symlink(target, &temp)
            .map_err(|e| failed("ln", &path, "cannot create the link", &e))?;
        if ids.uid.is_some() || ids.gid.is_some() {
            let _ = dir.set_owner(&temp, ids.uid, ids.gid);
        }
        dir.rename(&temp, name).map_err(|e| {
            let _ = dir.unlink(&temp, false);
            failed("ln", &path, "cannot move the link into place", &e)
        })
    }

    /// Writes `content` into the existing file `path` in place, in one
    /// write, never through a link there: for the files the kernel reads
    /// a setting from (`/proc/sys/...`), which are written, never
    /// replaced. Not atomic; nothing else should be written this way.
    ///
    /// # Errors
    /// When `path` is missing, not a regular file, or the kernel refuses
    /// the write (a read-only `/proc/sys`, a value it does not take).
    pub fn write_in_place(&self, path: &Path, content: &[u8]) -> Result<(), OpError> {
        let (dir, name) = target("write", path)?;
        let mut file = dir
            .open_for_write(&name)
            .map_err(|e| failed("write", path, "cannot open for writing", &e))?;
        file.write_all(content)
            .map_err(|e| failed("write", path, "cannot write", &e))
    }

    /// Creates the directory `path` with `mode`.
    ///
    /// # Errors
    /// When its parent is missing or not writable.
    pub fn create_dir(&self, path: &Path, mode: u32) -> Result<(), OpError> {
        let (dir, name) = target("mkdir", path)?;
        dir.mkdir(&name, 0o700)
            .map_err(|e| failed("mkdir", path, "cannot create", &e))?;
        let made = dir
            .sub(&name)
            .map_err(|e| failed("mkdir", path, "cannot open what was created", &e))?;
        made.set_own_mode(mode)
            .map_err(|e| failed("chmod", path, "cannot change the mode", &e))
    }

    /// Gives `path` (not following a link: a link is refused) the
    /// permission bits `mode`.
    ///
    /// # Errors
    /// When not permitted, or `path` is a link.
    pub fn set_mode(&self, path: &Path, mode: u32) -> Result<(), OpError> {
        let (dir, name) = target("chmod", path)?;
        dir.set_mode(&name, mode)
            .map_err(|e| failed("chmod", path, "cannot change the mode", &e))
    }

    /// Gives `path` (not following a link) `owner`.
    ///
    /// # Errors
    /// When a name is unknown or changing owners is not permitted.
    pub fn set_owner(&self, path: &Path, owner: &Owner) -> Result<(), OpError> {
        let ids = owner.ids("chown", path)?;
        let (dir, name) = target("chown", path)?;
        dir.set_owner(&name, ids.uid, ids.gid)
            .map_err(|e| failed("chown", path, "cannot change the owner", &e))
    }

    /// Makes `path` a symbolic link to `target`, replacing what is there
    /// atomically.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub fn symlink(&self, target_path: &Path, path: &Path) -> Result<(), OpError> {
        let (dir, name) = target("ln", path)?;
        self.link_in(&dir, &name, target_path, Ownership::default())
    }

    /// Runs the program `argv[0]` with the rest as arguments, `env` added
    /// to its environment, in `cwd`; its output (each stream within
    /// [`MAX_OUTPUT`](super::MAX_OUTPUT)), whatever its status.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: Option<&std::path::PathBuf>,
    ) -> Result<super::CommandOutput, OpError> {
        let shown = format!("`{}`", argv.join(" "));
        let run = Program {
            argv,
            env,
            cwd,
            shown: &shown,
            timeout: None,
        };
        self.exec(run, "run")
    }

    /// Runs the program `argv[0]` with the rest as arguments and `input`
    /// as its stdin, within `timeout`; its output, whatever its status.
    /// `input` is at most [`MAX_INPUT`] bytes, written as the program
    /// reads it: one that does not read is stopped at `timeout` as one
    /// that runs too long.
    ///
    /// # Errors
    /// When it cannot be started, runs past `timeout`, or `input` is
    /// larger than that.
    pub(crate) fn run_with_input(
        &self,
        argv: &[String],
        input: &[u8],
        timeout: std::time::Duration,
    ) -> Result<super::CommandOutput, OpError> {
        let shown = format!("`{}`", argv.join(" "));
        if input.len() > MAX_INPUT {
            return Err(OpError::new(
                "run",
                &shown,
                format!(
                    "its input is {} bytes, more than the {MAX_INPUT} a program is given",
                    input.len()
                ),
            ));
        }
        let run = Program {
            argv,
            env: &[],
            cwd: None,
            shown: &shown,
            timeout: Some(timeout),
        };
        run.output_with("run", Some(input))
    }

    /// Runs a program as `run` describes it.
    pub(super) fn exec(&self, run: Program<'_>, op: &str) -> Result<super::CommandOutput, OpError> {
        run.output(op)
    }

    /// Removes the file or link `path` (a link itself, not what it points
    /// to).
    ///
    /// # Errors
    /// When not permitted.
    pub fn remove_file(&self, path: &Path) -> Result<(), OpError> {
        let (dir, name) = target("rm", path)?;
        dir.unlink(&name, false)
            .map_err(|e| failed("rm", path, "cannot remove", &e))
    }

    /// Removes the directory `path` and everything in it, never following
    /// a link inside (links are removed, not what they point to).
    ///
    /// # Errors
    /// When not permitted.
    pub fn remove_dir_all(&self, path: &Path) -> Result<(), OpError> {
        let (dir, name) = target("rm -r", path)?;
        remove_tree(&dir, &name).map_err(|e| failed("rm -r", path, "cannot remove", &e))
    }
}

/// Removes the entry `name` of `dir` and, for a directory, everything in
/// it, each relative to its held directory.
fn remove_tree(dir: &Dir, name: &OsStr) -> std::io::Result<()> {
    if dir.entry(name)?.map(|e| e.kind) != Some(Kind::Dir) {
        return dir.unlink(name, false);
    }
    let inside = dir.sub(name)?;
    for entry in inside.list()? {
        remove_tree(&inside, &entry)?;
    }
    dir.unlink(name, true)
}
