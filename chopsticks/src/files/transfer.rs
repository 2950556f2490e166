//! The controller's side of one host's transfer, whatever verb started
//! it: `put` sends from this machine to a tunnel's host, `fetch` the other
//! way; each is two calls (the receiver says what it has, then the sender
//! streams the rest).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::fail::FileError;
use super::send::{self, Sending};
use super::spec::{Origin, Source};
use super::{agent, hex, receive, Cancel, Transfer};
use crate::error::{Error, Result};
use crate::tunnel::{Streaming, Tunnel};

fn transfer_error(host: &str, local: bool, e: FileError) -> Error {
    Error::Transfer {
        host: host.to_owned(),
        path: super::stage::path_of(&e.path),
        local,
        message: e.message,
    }
}

fn bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}

/// The calls of one transfer: each ends by `start + timeout` (one bound for
/// the whole transfer) at the latest, and `cancel` can end it.
struct Calls<'a> {
    tunnel: &'a Tunnel,
    start: Instant,
    timeout: Option<Duration>,
    cancel: Option<&'a Cancel>,
}

impl<'a> Calls<'a> {
    /// The transfer starts now; without a bound of its own (a group's), the
    /// tunnel's call timeout bounds it.
    fn new(tunnel: &'a Tunnel, bounds: Bounds<'a>) -> Calls<'a> {
        Calls {
            tunnel,
            start: Instant::now(),
            timeout: bounds.timeout.or(tunnel.call_timeout()),
            cancel: bounds.cancel,
        }
    }

    fn check(&self) -> Result<()> {
        self.cancel.map_or(Ok(()), |c| c.check(self.tunnel.host()))
    }

    /// A call, waited for.
    fn call<F: crate::RemoteFn>(&self, f: F, args: F::Args) -> Result<F::Output> {
        self.check()?;
        let pending = self.tunnel.call_now(f, args);
        if let Some(cancel) = self.cancel {
            cancel.watch(pending.canceller());
        }
        match self.timeout {
            Some(t) => pending.wait_from(self.start, t),
            None => pending.wait(),
        }
    }

    /// A call with an input or an output stream, started.
    fn stream<F: crate::RemoteFn>(
        &self,
        f: F,
        args: F::Args,
        input: bool,
    ) -> Result<Streaming<F::Output>> {
        self.check()?;
        let mut call = self.tunnel.call_streaming(f, args, input, !input)?;
        if let Some(timeout) = self.timeout {
            call.set_timeout_from(self.start, timeout);
        }
        if let Some(cancel) = self.cancel {
            cancel.watch(call.canceller());
        }
        Ok(call)
    }
}

/// How one transfer is bounded: by a time (a group's call timeout, or else
/// the tunnel's) and by what can cancel it.
#[derive(Default, Clone, Copy)]
pub(crate) struct Bounds<'a> {
    pub timeout: Option<Duration>,
    pub cancel: Option<&'a Cancel>,
}

impl<'a> Bounds<'a> {
    /// No bound but the tunnel's call timeout, and `cancel`.
    pub(crate) fn cancelled_by(cancel: &'a Cancel) -> Bounds<'a> {
        Bounds {
            timeout: None,
            cancel: Some(cancel),
        }
    }
}

/// Sends `source` to `remote` on `tunnel`'s host.
pub(crate) fn put(
    tunnel: &Tunnel,
    source: &Source,
    remote: &Path,
    apply: &receive::Apply,
    bounds: Bounds<'_>,
) -> Result<Transfer> {
    let calls = Calls::new(tunnel, bounds);
    let host = tunnel.host();
    let local = source.local();
    let source = match &source.0 {
        Origin::Path(path) => Sending::Path(path),
        Origin::Bytes(bytes) => Sending::Bytes {
            bytes,
            mode: apply.mode.unwrap_or(0o644),
        },
    };
    let manifest = send::manifest(&source).map_err(|e| transfer_error(host, true, e))?;
    let sums = calls.call(agent::probe, (bytes(remote), manifest.clone()))?;
    let theirs: HashMap<Vec<u8>, super::Sum> = manifest
        .into_iter()
        .zip(sums)
        .filter_map(|((rel, _), sum)| Some((rel, sum?)))
        .collect();
    let mut call = calls.stream(agent::receive, (bytes(remote), apply.clone()), true)?;
    let sent = match send::send(&source, &theirs, &mut call) {
        Ok(sent) => sent,
        // The agent ended the call (it failed there, or its deadline
        // passed): its result says why.
        Err(_) if call.ended() => {
            return Err(match call.wait() {
                Ok(Err(e)) => transfer_error(host, false, e),
                Err(e) => e,
                Ok(Ok(_)) => Error::Protocol {
                    host: host.to_owned(),
                    message: "the agent took a transfer that broke off".into(),
                },
            });
        }
        // Failed here: dropping the call cancels it, and the agent writes
        // nothing.
        Err(e) => return Err(transfer_error(host, true, e)),
    };
    let received = call
        .finish(true)?
        .map_err(|e| transfer_error(host, false, e))?;
    let ends = Ends {
        host,
        local,
        remote,
        received_here: false,
    };
    ends.transfer(&sent, received)
}

/// Fetches `remote` from `tunnel`'s host to `local`.
pub(crate) fn fetch(
    tunnel: &Tunnel,
    remote: &Path,
    local: &Path,
    apply: &receive::Apply,
    bounds: Bounds<'_>,
) -> Result<Transfer> {
    let calls = Calls::new(tunnel, bounds);
    let host = tunnel.host();
    let manifest = calls
        .call(agent::manifest, (bytes(remote),))?
        .map_err(|e| transfer_error(host, false, e))?;
    let theirs: Vec<(Vec<u8>, super::Sum)> = manifest
        .iter()
        .zip(receive::probe(local, &manifest))
        .filter_map(|((rel, _), sum)| Some((rel.clone(), sum?)))
        .collect();
    let mut call = calls.stream(agent::send, (bytes(remote), theirs), false)?;
    // A fetch cancelled before its files replace their targets writes none.
    let wanted = || calls.cancel.is_none_or(|c| !c.is_cancelled());
    let apply = receive::Apply {
        strip_setid: true,
        ..apply.clone()
    };
    let received = match receive::receive(local, &apply, &mut call, &wanted) {
        Ok(received) => received,
        Err(e) if call.ended() => {
            return Err(match call.wait() {
                Ok(Err(theirs)) => transfer_error(host, false, theirs),
                Err(theirs) => theirs,
                Ok(Ok(_)) => transfer_error(host, true, e),
            });
        }
        // Failed here: dropping the call cancels it on the agent.
        Err(e) => return Err(transfer_error(host, true, e)),
    };
    let sent = call
        .finish(false)?
        .map_err(|e| transfer_error(host, false, e))?;
    let ends = Ends {
        host,
        local,
        remote,
        received_here: true,
    };
    ends.transfer(&sent, received)
}

/// The two ends of a finished transfer.
struct Ends<'a> {
    host: &'a str,
    local: &'a Path,
    remote: &'a Path,
    /// A fetch: this machine received.
    received_here: bool,
}

impl Ends<'_> {
    /// The transfer as both ends saw it, when they agree on its SHA-256
    /// (each end compared every file's already: this compares the totals).
    fn transfer(&self, sent: &send::Sent, received: receive::Received) -> Result<Transfer> {
        if received.sha256 != sent.sha256 {
            let (path, receiver, sender) = match self.received_here {
                true => (self.local, "this machine", "the host"),
                false => (self.remote, "the host", "this machine"),
            };
            return Err(Error::Transfer {
                host: self.host.to_owned(),
                path: path.to_owned(),
                local: self.received_here,
                message: format!(
                    "{receiver} has SHA-256 {}, {sender} sent {}",
                    hex(&received.sha256),
                    hex(&sent.sha256)
                ),
            });
        }
        Ok(Transfer {
            local: self.local.to_owned(),
            remote: self.remote.to_owned(),
            bytes: received.bytes,
            sha256: hex(&sent.sha256),
            changed: received.changed,
            files_sent: received.files,
            files_skipped: received.same,
            tree: received.tree,
            in_place: received.in_place,
        })
    }
}
