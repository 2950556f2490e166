//! The controller's side of transfers: `put` sends from this machine to a
//! tunnel's host, `fetch` the other way; each is two calls (the receiver
//! says what it has, then the sender streams the rest).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::fail::FileError;
use super::send::{self, Source};
use super::{agent, hex, receive, Cancel, FileOptions, Transfer};
use crate::error::{Error, Result};
use crate::tunnel::Tunnel;

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

/// A call that ends by `start + timeout` (the transfer's bound) at the
/// latest, which `cancel` can end.
fn bounded<F: crate::RemoteFn>(
    tunnel: &Tunnel,
    f: F,
    args: F::Args,
    (start, timeout): (Instant, Option<Duration>),
    cancel: Option<&Cancel>,
) -> Result<F::Output> {
    if let Some(cancel) = cancel {
        cancel.check(tunnel.host())?;
    }
    let pending = tunnel.call_async(f, args);
    if let Some(cancel) = cancel {
        cancel.watch(pending.canceller());
    }
    match timeout {
        Some(t) => pending.wait_from(start, t),
        None => pending.wait(),
    }
}

/// How one transfer runs: its bound (a group's call timeout, or else the
/// tunnel's) and what can cancel it.
#[derive(Default, Clone, Copy)]
pub(crate) struct Run<'a> {
    pub timeout: Option<Duration>,
    pub cancel: Option<&'a Cancel>,
}

/// Sends `source` (described as `local`) to `remote` on `tunnel`'s host.
pub(crate) fn put(
    tunnel: &Tunnel,
    source: Source<'_>,
    local: &Path,
    remote: &Path,
    opts: &FileOptions,
    run: Run<'_>,
) -> Result<Transfer> {
    let Run { timeout, cancel } = run;
    let start = Instant::now();
    // One bound for the whole transfer, both of its calls.
    let timeout = timeout.or(tunnel.call_timeout());
    let host = tunnel.host();
    let manifest = send::manifest(&source).map_err(|e| transfer_error(host, true, e))?;
    let sums = bounded(
        tunnel,
        agent::probe,
        (bytes(remote), manifest.clone()),
        (start, timeout),
        cancel,
    )?;
    let theirs: HashMap<Vec<u8>, super::Sum> = manifest
        .into_iter()
        .zip(sums)
        .filter_map(|((rel, _), sum)| Some((rel, sum?)))
        .collect();
    let source = match source {
        Source::Bytes { bytes, mode } => Source::Bytes {
            bytes,
            mode: opts.bytes_mode.unwrap_or(mode),
        },
        path => path,
    };
    if let Some(cancel) = cancel {
        cancel.check(host)?;
    }
    let mut call = tunnel.call_streaming(
        agent::receive,
        (bytes(remote), opts.apply.clone()),
        true,
        false,
    )?;
    if let Some(timeout) = timeout {
        call.set_timeout_from(start, timeout);
    }
    if let Some(cancel) = cancel {
        cancel.watch(call.canceller());
    }
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
    opts: &FileOptions,
    run: Run<'_>,
) -> Result<Transfer> {
    let Run { timeout, cancel } = run;
    let start = Instant::now();
    // One bound for the whole transfer, both of its calls.
    let timeout = timeout.or(tunnel.call_timeout());
    let host = tunnel.host();
    let manifest = bounded(
        tunnel,
        agent::manifest,
        (bytes(remote),),
        (start, timeout),
        cancel,
    )?
    .map_err(|e| transfer_error(host, false, e))?;
    let theirs: Vec<(Vec<u8>, super::Sum)> = manifest
        .iter()
        .zip(receive::probe(local, &manifest))
        .filter_map(|((rel, _), sum)| Some((rel.clone(), sum?)))
        .collect();
    if let Some(cancel) = cancel {
        cancel.check(host)?;
    }
    let mut call = tunnel.call_streaming(agent::send, (bytes(remote), theirs), false, true)?;
    if let Some(timeout) = timeout {
        call.set_timeout_from(start, timeout);
    }
    if let Some(cancel) = cancel {
        cancel.watch(call.canceller());
    }
    // A fetch cancelled before its files replace their targets writes none.
    let wanted = || cancel.is_none_or(|c| !c.is_cancelled());
    let apply = receive::Apply {
        strip_setid: true,
        ..opts.apply.clone()
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
