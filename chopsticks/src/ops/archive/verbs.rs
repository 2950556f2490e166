//! The controller's unarchive verbs, for an archive on this machine
//! ([`Unarchive::local`]): put it to a temporary file on the host, unpack
//! it there, remove the temporary file.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{unarchive, Unarchive};
use crate::error::Result;
use crate::group::{Group, GroupResult};
use crate::ops::{self, Change, Mode};
use crate::tunnel::Tunnel;

impl Tunnel {
    /// Unpacks an archive into a directory on the host as [`Unarchive`]
    /// describes it: one on this machine ([`Unarchive::local`]) is put to
    /// a temporary file in the host's `/tmp` first (in [`Mode::Check`]
    /// too: the host compares it entry by entry with what it has) and
    /// removed after; one on the host is unpacked there.
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
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = format!("/tmp/.chopsticks-unarchive-{}-{n}", std::process::id());
    t.put(&spec.archive, &temp).mode(0o600).run()?;
    let on_host = Unarchive {
        archive: temp.clone().into(),
        local: false,
        shown: Some(spec.archive.display().to_string()),
        ..spec
    };
    let unpacked = t.call(unarchive, (on_host, mode));
    let removed = t.call(ops::file, (ops::File::new(&temp).absent(), Mode::Apply));
    let change = unpacked?;
    removed?;
    Ok(change)
}
