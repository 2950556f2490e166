//! The controller's download verbs: [`Tunnel::download`] and
//! [`Group::download`]. Per host: ask what `dest` holds; when it has the
//! checksum, the host settles mode and owner itself; otherwise (in
//! [`Mode::Apply`]) the controller fetches once for every host, checks
//! the checksum, and puts the file (streamed, atomic and durable), which
//! the host refuses unless it has that checksum.

use super::{download, download_found, fetch, Download, Found};
use crate::error::{Error, Result};
use crate::group::{Group, GroupResult};
use crate::ops::{Change, Mode, OpError};
use crate::tunnel::Tunnel;

impl Tunnel {
    /// Makes the host's file hold the URL's content, as [`Download`]
    /// describes it: this machine fetches it (once per process, whatever
    /// the number of hosts) and sends it, unless the host has it already;
    /// with [`Download::on_host`] the host fetches it. In [`Mode::Check`]
    /// nothing is sent and, when the spec has a checksum, nothing fetched.
    ///
    /// # Errors
    /// [`Error::Controller`] when this machine cannot fetch the URL (no
    /// `curl`, an HTTP error, the wrong checksum, too large or too slow);
    /// [`Error::Remote`] with the host's [`OpError`]; any error of a call
    /// or a put. The file keeps its old content.
    pub fn download(&self, spec: Download, mode: Mode) -> Result<Change> {
        one_host(self, spec, mode)
    }
}

impl Group {
    /// [`Tunnel::download`] on every host at once (at most
    /// [`forks`](Group::forks) at a time): the URL is fetched once, by the
    /// first host that needs it, and sent to each host that does.
    pub fn download(&self, spec: Download, mode: Mode) -> GroupResult<Change> {
        GroupResult::new(self.fan_out("downloading", |_, member| {
            member.with_tunnel(|t| one_host(t, spec.clone(), mode))
        }))
    }
}

/// A failure on this machine, for `tunnel`'s host.
fn here(tunnel: &Tunnel, e: OpError) -> Error {
    Error::Controller {
        host: tunnel.host().to_owned(),
        function: Some("ops::download"),
        message: e.to_string(),
    }
}

/// One host's download.
fn one_host(t: &Tunnel, spec: Download, mode: Mode) -> Result<Change> {
    // A check-only agent would refuse the put: say what it would be.
    let mode = match t.is_check_only() {
        true => Mode::Check,
        false => mode,
    };
    if spec.on_host {
        return t.call(download, (spec, mode));
    }
    let found: Found = t.call(download_found, (spec.clone(),))?;
    let found = found
        .checked(t.host())
        .map_err(|message| Error::Controller {
            host: t.host().to_owned(),
            function: Some("ops::download"),
            message,
        })?;
    let want = match (&spec.sha256, &found.sha256) {
        (Some(want), Some(have)) if want == have => return t.call(download, (spec, mode)),
        (Some(want), _) => want.clone(),
        // No checksum: only the content itself can say.
        (None, have) => {
            let fetched = fetch::fetched(&spec).map_err(|e| here(t, e))?;
            if have.as_ref() == Some(&fetched.sha256) {
                let sum = fetched.sha256.clone();
                return t.call(download, (spec.sha256(sum), mode));
            }
            fetched.sha256.clone()
        }
    };
    let (summary, file_mode, owner) = spec.summary(&found, &want);
    let change = Change {
        changed: true,
        summary,
        ..Change::default()
    };
    if mode == Mode::Check {
        return Ok(change);
    }
    let fetched = fetch::fetched(&spec).map_err(|e| here(t, e))?;
    // Checked here before anything is sent (it was hashed as it was
    // fetched); the put then carries the sum, and the host refuses other
    // content before it replaces `dest` (the receiver hashes what arrives
    // and compares it with the sender's sum and with this one), so a
    // mismatch keeps the old file.
    if fetched.sha256 != want {
        return Err(here(
            t,
            spec.fail(format!(
                "the download of {} has sha256 {}, not {want}: nothing was sent",
                spec.shown_url(),
                fetched.sha256
            )),
        ));
    }
    let mut put = t
        .put(&fetched.path, &spec.dest)
        .mode(file_mode)
        .sha256(&want);
    if let Some(user) = owner.user {
        put = put.owner(user);
    }
    if let Some(group) = owner.group {
        put = put.group(group);
    }
    put.run()?;
    Ok(change)
}
