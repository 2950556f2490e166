//! The transfer verbs of a [`Group`]: the same put to every host at once,
//! a fetch from each host to a path of its own (`{host}`).

use std::path::{Path, PathBuf};

use super::handle::{Cancel, TransferHandle};
use super::spec::{private, Fetch, Put, Source, Spec, TransferTarget};
use super::transfer::Bounds;
use super::{host_path, tunnel, Transfer};
use crate::error::Error;
use crate::group::{Group, GroupResult};
use crate::tunnel::Tunnel;

impl TransferTarget for &Group {}
impl private::Sealed for &Group {}

impl Group {
    /// A put of `source` to `remote` on every host at once (at most
    /// [`forks`](Group::forks) at a time), as
    /// [`Tunnel::put`](crate::Tunnel::put) does for one; each host's
    /// bounded by the group's [`call_timeout`](Group::call_timeout).
    /// [`run`](Put::run) it for a [`GroupResult`], or
    /// [`spawn`](Put::spawn) it.
    #[must_use = "a put does nothing until it is run or spawned"]
    pub fn put(&self, source: impl Into<Source>, remote: impl AsRef<Path>) -> Put<&Group> {
        Put::new(self, source.into(), remote.as_ref())
    }

    /// A fetch of `remote` from every host to a path of its own on this
    /// machine: `local` must contain `{host}`, which becomes the host's
    /// name (`/` in a name becomes `_`), e.g. `logs/{host}/syslog`; the
    /// directories down to the one it names are created when missing (see
    /// [`Fetch`]).
    ///
    /// Without `{host}`, or when two hosts would map to one path, the hosts
    /// concerned fail with [`Error::Config`] and nothing is fetched from
    /// them.
    #[must_use = "a fetch does nothing until it is run or spawned"]
    pub fn fetch(&self, remote: impl AsRef<Path>, local: impl AsRef<Path>) -> Fetch<&Group> {
        Fetch::new(self, remote.as_ref(), local.as_ref())
    }
}

impl<'g> Put<&'g Group> {
    /// Sends it to every host, and waits for all of them.
    pub fn run(mut self) -> GroupResult<Transfer> {
        let spec = std::mem::take(&mut self.spec);
        put_all(self.on, &spec, None)
    }

    /// Sends it on a thread of its own and returns at once:
    /// [`wait`](TransferHandle::wait) for the hosts' results, or drop the
    /// handle to cancel every host's transfer.
    pub fn spawn(mut self) -> TransferHandle<'g, GroupResult<Transfer>> {
        let spec = std::mem::take(&mut self.spec);
        let group = self.on.clone();
        TransferHandle::start(hosts(&group), move |cancels| {
            put_all(&group, &spec, Some(cancels))
        })
    }
}

impl<'g> Fetch<&'g Group> {
    /// Fetches from every host, and waits for all of them.
    pub fn run(mut self) -> GroupResult<Transfer> {
        let spec = std::mem::take(&mut self.spec);
        fetch_all(self.on, &spec, None)
    }

    /// Fetches on a thread of its own, as [`Put::spawn`] sends.
    pub fn spawn(mut self) -> TransferHandle<'g, GroupResult<Transfer>> {
        let spec = std::mem::take(&mut self.spec);
        let group = self.on.clone();
        TransferHandle::start(hosts(&group), move |cancels| {
            fetch_all(&group, &spec, Some(cancels))
        })
    }
}

fn hosts(group: &Group) -> Vec<String> {
    group.hosts().map(str::to_owned).collect()
}

/// Host `i`'s bounds: the group's call timeout, and its canceller.
fn bounds<'a>(group: &Group, cancels: Option<&'a [Cancel]>, i: usize) -> Bounds<'a> {
    Bounds {
        timeout: group.timeout(),
        cancel: cancels.map(|c| &c[i]),
    }
}

fn put_all(group: &Group, spec: &Spec, cancels: Option<&[Cancel]>) -> GroupResult<Transfer> {
    GroupResult::new(group.fan_out("putting", |i, m| {
        m.with_tunnel(|t| tunnel::put(t, spec, bounds(group, cancels, i)))
    }))
}

fn fetch_all(group: &Group, spec: &Spec, cancels: Option<&[Cancel]>) -> GroupResult<Transfer> {
    let locals = host_path::for_hosts(group.hosts(), &spec.local);
    GroupResult::new(group.fan_out("fetching", |i, m| {
        let local: &PathBuf = locals[i].as_ref().map_err(Error::clone)?;
        m.with_tunnel(|t: &Tunnel| tunnel::fetch_to(t, spec, local, bounds(group, cancels, i)))
    }))
}
