//! The means to write: every change an operation makes goes through a
//! [`Writer`], which only [`Plan::run`](super::Plan::run) in
//! [`Mode::Apply`](super::Mode::Apply) makes.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::OpError;
use crate::files::{self, Ownership, Staged};

/// Owner and group by name or numeric ID; `None` leaves them as they are
/// (new files: the writing user's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    /// The owning user.
    pub user: Option<String>,
    /// The owning group.
    pub group: Option<String>,
}

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
pub struct Writer(());

fn failed(op: &str, path: &Path, doing: &str, e: &std::io::Error) -> OpError {
    OpError::new(
        op,
        path.display(),
        format!("{doing}: {}", files::describe(e)),
    )
}

impl Writer {
    pub(super) fn new() -> Writer {
        Writer(())
    }

    /// Replaces `path` with `content` atomically (a temporary file beside
    /// it, fsynced, renamed into place), with `mode` and `owner`.
    ///
    /// # Errors
    /// When the directory is missing or not writable, the disk is full ...
    pub fn write_file(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        owner: &Owner,
    ) -> Result<(), OpError> {
        let op = "write";
        let ids = owner.ids(op, path)?;
        let mut staged = Staged::create(path)
            .map_err(|e| failed(op, path, "cannot create a temporary file", &e))?;
        staged
            .file()
            .write_all(content)
            .map_err(|e| failed(op, path, "cannot write", &e))?;
        let sealed = staged
            .seal(mode, ids, true)
            .map_err(|e| failed(op, path, "cannot finish the file", &e))?;
        sealed
            .commit()
            .map_err(|e| failed(op, path, "cannot move the file into place", &e))?;
        Ok(())
    }

    /// Creates the directory `path` with `mode`.
    ///
    /// # Errors
    /// When its parent is missing or not writable.
    pub fn create_dir(&self, path: &Path, mode: u32) -> Result<(), OpError> {
        fs::create_dir(path).map_err(|e| failed("mkdir", path, "cannot create", &e))?;
        self.set_mode(path, mode)
    }

    /// Gives `path` the permission bits `mode`.
    ///
    /// # Errors
    /// When not permitted.
    pub fn set_mode(&self, path: &Path, mode: u32) -> Result<(), OpError> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| failed("chmod", path, "cannot change the mode", &e))
    }

    /// Gives `path` (not following a link) `owner`.
    ///
    /// # Errors
    /// When a name is unknown or changing owners is not permitted.
    pub fn set_owner(&self, path: &Path, owner: &Owner) -> Result<(), OpError> {
        let ids = owner.ids("chown", path)?;
        std::os::unix::fs::lchown(path, ids.uid, ids.gid)
            .map_err(|e| failed("chown", path, "cannot change the owner", &e))
    }

    /// Makes `path` a symbolic link to `target`, replacing what is there
    /// atomically.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub fn symlink(&self, target: &Path, path: &Path) -> Result<(), OpError> {
        let temp = files::temp_name(path);
        std::os::unix::fs::symlink(target, &temp)
            .map_err(|e| failed("ln", path, "cannot create the link", &e))?;
        fs::rename(&temp, path).map_err(|e| {
            let _ = fs::remove_file(&temp);
            failed("ln", path, "cannot move the link into place", &e)
        })
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

    /// Runs a program as `run` describes it.
    pub(super) fn exec(&self, run: Program<'_>, op: &str) -> Result<super::CommandOutput, OpError> {
        run.output(op)
    }

    /// Removes the file or link `path`.
    ///
    /// # Errors
    /// When not permitted.
    pub fn remove_file(&self, path: &Path) -> Result<(), OpError> {
        fs::remove_file(path).map_err(|e| failed("rm", path, "cannot remove", &e))
    }

    /// Removes the directory `path` and everything in it.
    ///
    /// # Errors
    /// When not permitted.
    pub fn remove_dir_all(&self, path: &Path) -> Result<(), OpError> {
        fs::remove_dir_all(path).map_err(|e| failed("rm -r", path, "cannot remove", &e))
    }
}
