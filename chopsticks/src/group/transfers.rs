//! Files to and from every host of a group: `put` the same file or tree to
//! all of them, `fetch` each host's copy to a path of its own.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Group, GroupResult, Member};
use crate::error::{Error, Result};
use crate::files::{self, Source};
use crate::{FileOptions, Transfer};

/// The placeholder a group fetch replaces with each host's name.
const HOST: &[u8] = b"{host}";

impl Group {
    /// Copies the file or tree `local` to `remote` on every host at once
    /// (at most [`forks`](Group::forks) at a time), as
    /// [`Tunnel::put`](crate::Tunnel::put) does for one; bounded per host
    /// by the group's [`call_timeout`](Group::call_timeout).
    pub fn put(&self, local: impl AsRef<Path>, remote: impl AsRef<Path>) -> GroupResult<Transfer> {
        self.put_with(local, remote, &FileOptions::new())
    }

    /// [`put`](Group::put) with options.
    pub fn put_with(
        &self,
        local: impl AsRef<Path>,
        remote: impl AsRef<Path>,
        options: &FileOptions,
    ) -> GroupResult<Transfer> {
        let (local, remote) = (local.as_ref(), remote.as_ref());
        GroupResult::new(self.fan_out("putting", |_, m| {
            transfer(m, |t| {
                files::put(t, Source::Path(local), local, remote, options, self.run())
            })
        }))
    }

    /// Copies `remote` from every host to a path of its own on this
    /// machine: `local` must contain `{host}`, which becomes the host's
    /// name (`/` in a name becomes `_`), e.g. `backups/{host}/nginx.conf`.
    ///
    /// Without `{host}`, or when two hosts would map to one path, the hosts
    /// concerned fail with [`Error::Config`] and nothing is fetched from
    /// them.
    pub fn fetch(
        &self,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
    ) -> GroupResult<Transfer> {
        self.fetch_with(remote, local, &FileOptions::new())
    }

    /// [`fetch`](Group::fetch) with options (e.g. `parents(true)` to create
    /// each host's directory).
    pub fn fetch_with(
        &self,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
        options: &FileOptions,
    ) -> GroupResult<Transfer> {
        let remote = remote.as_ref();
        let locals = host_paths(&self.members, local.as_ref());
        GroupResult::new(self.fan_out("fetching", |i, m| {
            let local = locals[i].clone()?;
            transfer(m, |t| files::fetch(t, remote, &local, options, self.run()))
        }))
    }
}

impl Group {
    /// How each host's transfer runs: bounded by the group's call timeout.
    fn run(&self) -> files::Run<'static> {
        files::Run {
            timeout: self.call_timeout,
            cancel: None,
        }
    }
}

/// Runs a transfer on a member's tunnel; a lost agent is reconnected next
/// time.
fn transfer(m: &Member, run: impl FnOnce(&crate::Tunnel) -> Result<Transfer>) -> Result<Transfer> {
    let tunnel = m.tunnel()?;
    let result = run(&tunnel);
    if let Err(Error::Disconnected { .. }) = &result {
        m.forget_tunnel(&tunnel);
    }
    result
}

/// Each member's local path for a group fetch: `pattern` with `{host}`
/// replaced, or why there is none.
pub(super) fn host_paths(members: &[Arc<Member>], pattern: &Path) -> Vec<Result<PathBuf>> {
    let bytes = pattern.as_os_str().as_bytes();
    let has_host = bytes.windows(HOST.len()).any(|w| w == HOST);
    let paths: Vec<PathBuf> = members
        .iter()
        .map(|m| {
            let name = m.name.replace('/', "_");
            let mut out = Vec::with_capacity(bytes.len() + name.len());
            let mut rest = bytes;
            while let Some(at) = rest.windows(HOST.len()).position(|w| w == HOST) {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(name.as_bytes());
                rest = &rest[at + HOST.len()..];
            }
            out.extend_from_slice(rest);
            PathBuf::from(OsString::from_vec(out))
        })
        .collect();
    members
        .iter()
        .zip(&paths)
        .map(|(m, path)| {
            let refuse = |message: String| Error::Config {
                host: m.name.clone(),
                message,
            };
            if !has_host {
                return Err(refuse(format!(
                    "a group fetch to {} would put every host's file in one place: put \
                     `{{host}}` in the local path (e.g. `backups/{{host}}/file`)",
                    pattern.display()
                )));
            }
            let others: Vec<&str> = members
                .iter()
                .zip(&paths)
                .filter(|(o, p)| *p == path && o.name != m.name)
                .map(|(o, _)| o.name.as_str())
                .collect();
            if !others.is_empty() {
                return Err(refuse(format!(
                    "a group fetch would write {} for this host and for {}: their names \
                     differ only in `/`; name them apart",
                    path.display(),
                    others.join(", ")
                )));
            }
            Ok(path.clone())
        })
        .collect()
}
