//! Why a transfer failed, as both ends report it: the path and what to do.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A failure at one path; it crosses the wire as a value and becomes
/// [`Error::Transfer`](crate::Error::Transfer) on the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileError {
    /// The path, as bytes.
    pub path: Vec<u8>,
    pub message: String,
}

pub(crate) type Outcome<T> = Result<T, FileError>;

impl FileError {
    pub(crate) fn new(path: &Path, message: impl Into<String>) -> FileError {
        FileError {
            path: path.as_os_str().as_bytes().to_vec(),
            message: message.into(),
        }
    }

    /// `doing` failed at `path` with `e`.
    pub(crate) fn io(path: &Path, doing: &str, e: &io::Error) -> FileError {
        FileError::new(path, format!("{doing}: {}", describe(e)))
    }
}

/// An I/O error in words that say what to do.
pub(crate) fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES | libc::EPERM) => {
            "permission denied: use `sudo` on the tunnel, or a path this user may write".into()
        }
        Some(libc::ENOSPC | libc::EDQUOT) => {
            "no space left on the device (the old file is unchanged): free some space".into()
        }
        Some(libc::EISDIR) => "it is a directory".into(),
        Some(libc::ENOTDIR) => "a part of the path is not a directory".into(),
        Some(libc::EROFS) => "the filesystem is read-only".into(),
        Some(libc::ENAMETOOLONG) => "the name is too long".into(),
        _ => e.to_string(),
    }
}

/// Adds the path to an error of a step that names none.
pub(crate) trait At<T> {
    fn at(self, path: &Path, doing: &str) -> Outcome<T>;
}

impl<T> At<T> for io::Result<T> {
    fn at(self, path: &Path, doing: &str) -> Outcome<T> {
        self.map_err(|e| FileError::io(path, doing, &e))
    }
}
