//! Files: streamed, checksummed, atomic `put` and `fetch` of files, trees
//! and bytes, for tunnels ([`Tunnel::put`](crate::Tunnel::put),
//! [`Tunnel::fetch`](crate::Tunnel::fetch)), groups and queues.
//!
//! ```
//! use chopsticks::{FileOptions, Tunnel};
//!
//! #[chopsticks::main]
//! fn main() -> chopsticks::Result<()> {
//!     let dir = std::env::temp_dir().join(format!("files-doc-{}", std::process::id()));
//!     let t = Tunnel::local()?;
//!     let opts = FileOptions::new().mode(0o600).parents(true);
//!     let sent = t.put_bytes(b"key = 1\n", dir.join("app/app.conf"), &opts)?;
//!     assert!(sent.changed);
//!     // The same content again: nothing is sent.
//!     let again = t.put_bytes(b"key = 1\n", dir.join("app/app.conf"), &opts)?;
//!     assert!(!again.changed && again.files_skipped == 1);
//!     let back = t.fetch(dir.join("app/app.conf"), dir.join("copy.conf"))?;
//!     assert_eq!(back.sha256, sent.sha256);
//!     # std::fs::remove_dir_all(dir).unwrap();
//!     Ok(())
//! }
//! ```
//!
//! How a transfer works: the receiving end first says which of the files
//! it has with the same size, and their SHA-256 (one round trip); the
//! sender then streams one item stream (`format`) over the call's stream,
//! under the protocol's credit, so memory stays constant whatever the size
//! and other calls on the tunnel keep flowing. Files whose content the
//! receiver has are not sent. Every file is written to a temporary file
//! beside its target, checked against the sender's SHA-256, made durable
//! and renamed into place (`stage`).

mod agent;
mod fail;
mod format;
mod handle;
mod receive;
mod send;
mod stage;
mod transfer;

use std::path::PathBuf;

pub(crate) use fail::describe;
pub(crate) use handle::Cancel;
pub use handle::TransferHandle;
pub(crate) use receive::resolve;
pub(crate) use send::Source;
pub(crate) use stage::{temp_name, Ownership, Staged};
pub(crate) use transfer::{fetch, put, Run};

/// A SHA-256.
pub(crate) type Sum = [u8; 32];

/// Lower-case hex.
pub(crate) fn hex(sum: &Sum) -> String {
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one [`put`](crate::Tunnel::put) or [`fetch`](crate::Tunnel::fetch)
/// did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transfer {
    /// The path on this machine (empty for bytes sent from memory).
    pub local: PathBuf,
    /// The path on the host.
    pub remote: PathBuf,
    /// Content bytes sent.
    pub bytes: u64,
    /// The SHA-256 (hex) of the file's content, checked at both ends; for a
    /// tree, of its entries in order (each one's path, kind and content's
    /// SHA-256 or link target).
    pub sha256: String,
    /// Whether the destination changed: `false` when it had this content
    /// (and modes and owner) already, in which case no content was sent.
    pub changed: bool,
    /// Files whose content was sent.
    pub files_sent: u64,
    /// Files not sent because the destination had their content.
    pub files_skipped: u64,
    /// Whether a directory tree was transferred.
    pub tree: bool,
    /// Some file could not be renamed over its target (a bind-mounted file
    /// such as a container's `/etc/hosts`; another filesystem) and was
    /// written into it in place instead: a reader could see it half
    /// written for a moment.
    pub in_place: bool,
}

/// How a transfer writes at its destination.
///
/// ```
/// let opts = chopsticks::FileOptions::new()
///     .mode(0o640)
///     .owner("root")
///     .group("adm")
///     .parents(true);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOptions {
    apply: receive::Apply,
    bytes_mode: Option<u32>,
}

impl FileOptions {
    /// The defaults: each file keeps its source's mode (bytes sent from
    /// memory get `0o644`), the writing user owns new files, and a missing
    /// parent directory is an error.
    pub fn new() -> FileOptions {
        FileOptions::default()
    }

    /// Every file's mode (permission bits), instead of its source's.
    /// Directories keep theirs.
    pub fn mode(mut self, mode: u32) -> FileOptions {
        self.apply.mode = Some(mode & 0o7777);
        self.bytes_mode = Some(mode & 0o7777);
        self
    }

    /// The owner of what is written, by name or numeric ID (`"0"`); needs
    /// the right to change owners there (root: see
    /// [`TunnelBuilder::sudo`](crate::TunnelBuilder::sudo)).
    pub fn owner(mut self, user: impl Into<String>) -> FileOptions {
        self.apply.owner = Some(user.into());
        self
    }

    /// The group of what is written, by name or numeric ID.
    pub fn group(mut self, group: impl Into<String>) -> FileOptions {
        self.apply.group = Some(group.into());
        self
    }

    /// Whether to create the destination's missing parent directories
    /// (default: no, a missing one is an error).
    pub fn parents(mut self, create: bool) -> FileOptions {
        self.apply.parents = create;
        self
    }
}
