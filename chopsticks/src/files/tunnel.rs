//! The transfer verbs of a [`Tunnel`]: `put` and `fetch`, run at once or
//! on a thread of their own.

use std::path::Path;

use super::handle::TransferHandle;
use super::spec::{private, Fetch, Put, Source, Spec, TransferTarget};
use super::transfer::{self, Bounds};
use super::{host_path, Transfer};
use crate::error::Result;
use crate::tunnel::Tunnel;

impl TransferTarget for &Tunnel {}
impl private::Sealed for &Tunnel {}

impl Tunnel {
    /// A put of `source` (a file or directory tree on this machine, or
    /// [`Source::bytes`]) to `remote` on the host; [`run`](Put::run) it, or
    /// [`spawn`](Put::spawn) it on a thread of its own.
    ///
    /// The transfer is streamed, checked by SHA-256 at both ends, and
    /// written atomically (each file to a temporary file beside its target,
    /// made durable, then renamed into place). Files the host has with
    /// this content already are not sent. Modes are kept; symbolic links
    /// inside a tree are sent as links. Bounded as a whole by the call
    /// timeout.
    ///
    /// A file replaces what is at `remote`, a symbolic link too (it is not
    /// written through, as `cp` would). A tree goes into the directory
    /// `remote` (created when missing), which may be a link to a directory
    /// and keeps its own mode and owner; what is inside follows the source.
    ///
    /// ```no_run
    /// # use chopsticks::{Source, Tunnel};
    /// # fn main() -> chopsticks::Result<()> {
    /// let t = Tunnel::ssh("web1")?;
    /// t.put("build/app.conf", "/etc/app.conf").mode(0o640).owner("app").run()?;
    /// t.put(Source::bytes("hello\n"), "/etc/motd").run()?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use = "a put does nothing until it is run or spawned"]
    pub fn put(&self, source: impl Into<Source>, remote: impl AsRef<Path>) -> Put<&Tunnel> {
        Put::new(self, source.into(), remote.as_ref())
    }

    /// A fetch of the file or tree `remote` on the host to `local` on this
    /// machine, as [`put`](Tunnel::put) does the other way (see [`Fetch`]
    /// for `{host}` in `local` and what a host may send);
    /// [`run`](Fetch::run) it, or [`spawn`](Fetch::spawn) it.
    #[must_use = "a fetch does nothing until it is run or spawned"]
    pub fn fetch(&self, remote: impl AsRef<Path>, local: impl AsRef<Path>) -> Fetch<&Tunnel> {
        Fetch::new(self, remote.as_ref(), local.as_ref())
    }
}

impl<'t> Put<&'t Tunnel> {
    /// Sends it, and waits.
    ///
    /// # Errors
    /// [`Error::Transfer`](crate::Error::Transfer) naming the path and what
    /// to do (a missing parent directory, permission denied, a full disk
    /// ...), with the destination unchanged; or any error of a call.
    pub fn run(mut self) -> Result<Transfer> {
        let spec = std::mem::take(&mut self.spec);
        put(self.on, &spec, Bounds::default())
    }

    /// Sends it on a thread of its own and returns at once:
    /// [`wait`](TransferHandle::wait) for the result, or drop the handle
    /// to cancel the transfer (the host then keeps its old file and no
    /// temporary file). Other calls on the tunnel go on meanwhile.
    ///
    /// ```
    /// # use chopsticks::Tunnel;
    /// # #[chopsticks::main]
    /// # fn main() -> chopsticks::Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("put-spawn-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("big"), vec![7u8; 1 << 20]).unwrap();
    /// let t = Tunnel::local()?;
    /// let upload = t.put(dir.join("big"), dir.join("copy")).spawn();
    /// // ... other calls on `t` meanwhile ...
    /// let sent = upload.wait()?;
    /// assert_eq!(sent.bytes, 1 << 20);
    /// # std::fs::remove_dir_all(dir).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(mut self) -> TransferHandle<'t> {
        let spec = std::mem::take(&mut self.spec);
        let tunnel = self.on.alias();
        TransferHandle::start(vec![tunnel.host().to_owned()], move |cancels| {
            put(&tunnel, &spec, Bounds::cancelled_by(&cancels[0]))
        })
    }
}

impl<'t> Fetch<&'t Tunnel> {
    /// Fetches it, and waits.
    ///
    /// # Errors
    /// As [`Put::run`].
    pub fn run(mut self) -> Result<Transfer> {
        let spec = std::mem::take(&mut self.spec);
        fetch(self.on, &spec, Bounds::default())
    }

    /// Fetches it on a thread of its own, as [`Put::spawn`] sends.
    pub fn spawn(mut self) -> TransferHandle<'t> {
        let spec = std::mem::take(&mut self.spec);
        let tunnel = self.on.alias();
        TransferHandle::start(vec![tunnel.host().to_owned()], move |cancels| {
            fetch(&tunnel, &spec, Bounds::cancelled_by(&cancels[0]))
        })
    }
}

/// One host's put, whatever verb started it.
pub(crate) fn put(tunnel: &Tunnel, spec: &Spec, bounds: Bounds<'_>) -> Result<Transfer> {
    transfer::put(tunnel, &spec.source, &spec.remote, &spec.apply, bounds)
}

/// One host's fetch, whatever verb started it: to the spec's local path
/// with `{host}` filled in, its directory made.
pub(crate) fn fetch(tunnel: &Tunnel, spec: &Spec, bounds: Bounds<'_>) -> Result<Transfer> {
    let local = host_path::filled(&spec.local, tunnel.host());
    fetch_to(tunnel, spec, &local, bounds)
}

/// One host's fetch to `local` (the spec's, with `{host}` filled in).
pub(crate) fn fetch_to(
    tunnel: &Tunnel,
    spec: &Spec,
    local: &Path,
    bounds: Bounds<'_>,
) -> Result<Transfer> {
    if !spec.apply.parents {
        host_path::make_host_dirs(&spec.local, local, tunnel.host())?;
    }
    transfer::fetch(tunnel, &spec.remote, local, &spec.apply, bounds)
}
