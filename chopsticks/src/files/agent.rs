//! The `#[remote]` halves of transfers: what the agent does for
//! [`put`](crate::Tunnel::put) and [`fetch`](crate::Tunnel::fetch). Paths
//! cross the wire as bytes.

use std::collections::HashMap;
use std::path::Path;

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

/// Writes the call's input stream at `dest`.
#[remote(plain)]
pub(crate) fn receive(dest: Vec<u8>, apply: Apply) -> Outcome<Received> {
    let dest = path_of(&dest);
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
