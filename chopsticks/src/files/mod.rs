//! Files: streamed, checksummed, atomic transfers of files, trees and
//! bytes. One verb per direction, the same on every target:
//! [`Tunnel::put`](crate::Tunnel::put) / [`Tunnel::fetch`](crate::Tunnel::fetch),
//! [`Group::put`](crate::Group::put) / [`Group::fetch`](crate::Group::fetch)
//! and [`Queue::put`](crate::Queue::put) / [`Queue::fetch`](crate::Queue::fetch)
//! each give a spec ([`Put`], [`Fetch`]) that its methods configure and a
//! verb ends: `run()` (a tunnel's `Result<Transfer>`, a group's
//! `GroupResult<Transfer>`), `spawn()` (a [`TransferHandle`]), or, on a
//! queue, queued with the calls around it.
//!
//! How a transfer works: the receiving end first says which of the files
//! it has with the same size, and their SHA-256 (one round trip); the
//! sender then streams one item stream (`format`) over the call's stream,
//! under the protocol's credit, so memory stays constant whatever the size
//! and other calls on the tunnel keep flowing. Files whose content the
//! receiver has are not sent. Every file is written to a temporary file
//! beside its target, checked against the sender's SHA-256, made durable
//! and renamed into place (`stage`).

pub(crate) mod accounts;
pub(crate) mod agent;
mod at;
mod fail;
mod format;
mod group;
mod handle;
mod host_path;
mod queue;
mod receive;
mod send;
mod spec;
mod stage;
mod transfer;
mod tunnel;

use std::path::PathBuf;

use serde::{Serialize, Serializer};

pub(crate) use accounts::resolve;
#[cfg(feature = "archive")]
pub(crate) use at::resolve_dir;
pub(crate) use at::{entry_at, follow_at, parent_and_name, read_at, Dir, Entry, Kind};
pub(crate) use fail::describe;
pub(crate) use handle::Cancel;
pub use handle::{TransferHandle, TransferOutcome};
pub use queue::Enqueue;
pub use spec::{Fetch, Put, Source, TransferTarget};
pub(crate) use stage::{temp_name, Ownership, Sealed, Staged};

/// A SHA-256.
pub(crate) type Sum = [u8; 32];

/// Lower-case hex.
pub(crate) fn hex(sum: &Sum) -> String {
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of what `reader` gives, in lower-case hex, and how many
/// bytes that was; at most `limit` bytes are read (`None` past it).
///
/// # Errors
/// The reader's.
pub(crate) fn sha256_hex(
    reader: &mut impl std::io::Read,
    limit: u64,
) -> std::io::Result<Option<(String, u64)>> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let read = std::io::copy(
        &mut std::io::Read::take(reader, limit.saturating_add(1)),
        &mut hasher,
    )?;
    Ok((read <= limit).then(|| (hex(&hasher.finalize().into()), read)))
}

/// What one host's put or fetch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Transfer {
    /// The path on this machine (empty for bytes sent from memory).
    #[serde(serialize_with = "lossy")]
    pub local: PathBuf,
    /// The path on the host.
    #[serde(serialize_with = "lossy")]
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

/// A path as text (a name that is not UTF-8 with replacement characters).
fn lossy<S: Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}
