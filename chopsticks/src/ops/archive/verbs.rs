//! The controller's unarchive verbs, for an archive on this machine
//! ([`Unarchive::local`]): put it in a new private directory on the host,
//! unpack it there, remove the directory.

use std::path::{Path, PathBuf};

use super::{unarchive, Unarchive, OP};
use crate::error::Result;
use crate::group::{Group, GroupResult};
use crate::ops::{Change, Mode, OpError};
use crate::remote;
use crate::tunnel::Tunnel;

/// How the private directories' names begin.
const PREFIX: &str = ".chopsticks-unarchive-";

impl Tunnel {
    /// Unpacks an archive into a directory on the host as [`Unarchive`]
    /// describes it: one on this machine ([`Unarchive::local`]) is put in
    /// a new directory only the agent's user can enter, in the host's
    /// temporary directory (`$TMPDIR` or `/tmp`), first (in [`Mode::Check`]
    /// too: the host compares it entry by entry with what it has; never in
    /// `dest`) and the directory is removed after; one on the host is
    /// unpacked there.
    ///
    /// *Available with the crate feature `archive` only.*
    ///
    /// # Errors
    /// Any error of the put or the call; [`Error::Remote`](crate::Error::Remote)
    /// with the host's [`OpError`](crate::ops::OpError).
    pub fn unarchive(&self, spec: Unarchive, mode: Mode) -> Result<Change> {
        one_host(self, spec, mode)
    }
}

impl Group {
    /// [`Tunnel::unarchive`] on every host at once (at most
    /// [`forks`](Group::forks) at a time).
    ///
    /// *Available with the crate feature `archive` only.*
    pub fn unarchive(&self, spec: Unarchive, mode: Mode) -> GroupResult<Change> {
        GroupResult::new(self.fan_out("unarchiving", |_, member| {
            member.with_tunnel(|t| one_host(t, spec.clone(), mode))
        }))
    }
}

fn one_host(t: &Tunnel, spec: Unarchive, mode: Mode) -> Result<Change> {
    if !spec.local {
        return t.call(unarchive, (spec, mode));
    }
    let dir = t.call(unarchive_dir, ())?;
    let copy = dir.join("archive");
    let unpacked = t.put(&spec.archive, &copy).mode(0o600).run().and_then(|_| {
        let on_host = Unarchive {
            archive: copy,
            local: false,
            shown: Some(spec.archive.display().to_string()),
            ..spec
        };
        t.call(unarchive, (on_host, mode))
    });
    let removed = t.call(unarchive_dir_remove, (dir,));
    let change = unpacked?;
    removed?;
    Ok(change)
}

/// A new directory only this user can enter (mode 700) in the temporary
/// directory, named unpredictably, for a local archive's copy.
///
/// # Errors
/// [`OpError`] when the temporary directory has no room for it.
#[remote]
pub(crate) fn unarchive_dir() -> std::result::Result<PathBuf, OpError> {
    let dir = private_dir(&std::env::temp_dir())?;
    // The archive's copy changes nothing an operation describes: a
    // check-only agent receives it too.
    crate::files::agent::allow_scratch(&dir);
    Ok(dir)
}

/// Removes a directory [`unarchive_dir`] made, and what is in it.
///
/// # Errors
/// [`OpError`] when `dir` is not one it made or cannot be removed.
#[remote]
pub(crate) fn unarchive_dir_remove(dir: PathBuf) -> std::result::Result<(), OpError> {
    crate::files::agent::forget_scratch(&dir);
    remove_private(&dir)
}

fn private_dir(base: &Path) -> std::result::Result<PathBuf, OpError> {
    use std::hash::{BuildHasher as _, RandomState};
    use std::os::unix::fs::DirBuilderExt as _;
    let mut tries = 0u32;
    loop {
        // Seeded from the OS's random source, once per process.
        let n = RandomState::new().hash_one((std::process::id(), tries));
        let dir = base.join(format!("{PREFIX}{n:016x}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => {
                return Err(OpError::new(
                    OP,
                    base.display(),
                    format!(
                        "cannot create a private directory for the archive's copy ({}): make \
                         room in the host's temporary directory, or set TMPDIR for the agent",
                        crate::files::describe(&e)
                    ),
                ))
            }
            Ok(()) => return Ok(dir),
        }
    }
}

fn remove_private(dir: &Path) -> std::result::Result<(), OpError> {
    let ours = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX));
    if !ours {
        return Err(OpError::new(
            OP,
            dir.display(),
            "is not a directory unarchive made for an archive's copy: not removed",
        ));
    }
    std::fs::remove_dir_all(dir).map_err(|e| {
        OpError::new(
            OP,
            dir.display(),
            format!(
                "cannot remove the archive's temporary copy ({}): remove it by hand",
                crate::files::describe(&e)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_copy_goes_to_a_new_private_directory_removed_after() {
        let base = std::env::temp_dir().join(format!("cs-unarchive-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let a = private_dir(&base).unwrap();
        let b = private_dir(&base).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(base.as_path()));
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        // Not the controller's process ID: another controller with the
        // same one cannot take the name.
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(&format!("-{}-", std::process::id())),
            "{name}"
        );
        std::fs::write(a.join("archive"), b"x").unwrap();
        remove_private(&a).unwrap();
        assert!(!a.exists());
        assert!(remove_private(&base).is_err());
        assert!(base.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
