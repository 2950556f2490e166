//! The `#[remote]` halves of transfers: what the agent does for
//! [`put`](crate::Tunnel::put) and [`fetch`](crate::Tunnel::fetch). Paths
//! cross the wire as bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::fail::{FileError, Outcome};
use super::receive::{self as receiving, Apply, Received};
use super::send::{self as sending, Sending, Sent};
use super::stage::path_of;
use super::Sum;
use crate::agent::stream;
use crate::remote;

/// Which files under `dest` have the content of the same size already.
#[remote]
pub(crate) fn probe(dest: Vec<u8>, wanted: Vec<(Vec<u8>, u64)>) -> Vec<Option<Sum>> {
    receiving::probe(&path_of(&dest), &wanted)
}

/// The private scratch directories this agent made for its own use (a
/// local archive's copy): the only places a check-only agent receives
/// files, as they change nothing an operation describes.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Lets a check-only agent receive files under `dir`, a private directory
/// it just made for its own use.
#[cfg(feature = "archive")]
pub(crate) fn allow_scratch(dir: &Path) {
    if let Ok(mut dirs) = SCRATCH.lock() {
        dirs.push(dir.to_owned());
    }
}

/// Forgets a scratch directory of `allow_scratch` (it was removed).
#[cfg(feature = "archive")]
pub(crate) fn forget_scratch(dir: &Path) {
    if let Ok(mut dirs) = SCRATCH.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// Refuses `dest` in a check-only agent, but in a scratch directory.
fn may_receive(dest: &Path) -> Outcome<()> {
    if !crate::agent::check_only() {
        return Ok(());
    }
    let scratch = SCRATCH
        .lock()
        .is_ok_and(|dirs| dirs.iter().any(|d| dest.parent() == Some(d.as_path())));
    match scratch {
        true => Ok(()),
        false => Err(FileError::new(
            dest,
            "this agent is check-only (TunnelBuilder::check_only, or the check pass of \
             --apply-plan): it writes nothing, so it receives no file; send files in the \
             apply run (ask Fleet::mode or the Mode your tool was given)",
        )),
    }
}

/// Writes the call's input stream at `dest`.
#[remote(plain)]
pub(crate) fn receive(dest: Vec<u8>, apply: Apply) -> Outcome<Received> {
    let dest = path_of(&dest);
    may_receive(&dest)?;
    let mut input = stream::input().map_err(|e| FileError::new(&dest, e.to_string()))?;
    // A put cancelled before its files replace their targets writes none.
    let wanted = input.wanted();
    receiving::receive(&dest, &apply, &mut input, &wanted)
}

/// The regular files of `source`, with their sizes.
#[remote(plain)]
pub(crate) fn manifest(source: Vec<u8>) -> Outcome<Vec<(Vec<u8>, u64)>> {
    sending::manifest(&Sending::Path(&path_of(&source)))
}

/// Streams `source` to the controller, skipping the files it has.
#[remote(plain)]
pub(crate) fn send(source: Vec<u8>, theirs: Vec<(Vec<u8>, Sum)>) -> Outcome<Sent> {
    let source = path_of(&source);
    let mut output = stream::output().map_err(|e| FileError::new(&source, e.to_string()))?;
    let theirs: HashMap<Vec<u8>, Sum> = theirs.into_iter().collect();
    sending::send(&Sending::Path(Path::new(&source)), &theirs, &mut output)
}
