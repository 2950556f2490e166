//! `Tunnel`: one agent, local or remote, and the calls made on it.
//!
//! - `builder`: how to reach a host, with the options every kind shares;
//! - `kind/`: one file per kind of tunnel (local, ssh, docker, command);
//! - `start/`: what starting any agent takes (bootstrap, handshake, image,
//!   stderr, advice for failures);
//! - `conn/`: a started agent: its I/O thread, calls, deadlines, closing;
//! - `pending`: a call in flight, as the caller sees it.

mod arch;
mod askpass;
mod builder;
mod conn;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod kind;
mod pending;
mod start;
mod stream;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub use builder::{TunnelBuilder, ENV_AGENT_BINARY};
pub(crate) use conn::CLOSE_GRACE;

/// How many times this process read and hashed an executable to ship it:
/// an unchanged executable is hashed once per build, not once per run.
/// Not public API (tests and benchmarks watch it).
pub fn images_hashed() -> u64 {
    start::image::hashed()
}
pub use pending::Pending;
pub(crate) use stream::Streaming;

use crate::error::Result;
use crate::RemoteFn;
use conn::Conn;

/// The host name of local tunnels (as in Python chopsticks).
pub const LOCALHOST: &str = "localhost";

/// A connection to one agent: a copy of this program running on a host (or
/// locally), ready to run its `#[remote]` functions.
///
/// `Tunnel` is `Send + Sync`: share it between threads (`&Tunnel`,
/// `Arc<Tunnel>`) and call from all of them at once; calls are multiplexed
/// and run concurrently on the agent, so a slow call never blocks a fast one.
/// Dropping the tunnel closes it (see [`close`](Tunnel::close)).
///
/// ```
/// use chopsticks::{remote, Tunnel};
///
/// #[remote]
/// fn double(x: i64) -> i64 {
///     x * 2
/// }
///
/// #[chopsticks::main]
/// fn main() -> chopsticks::Result<()> {
///     let t = Tunnel::local()?;
///     assert_eq!(t.call(double, (21,))?, 42);
///     assert_eq!(double(4), 8); // still an ordinary function
///     Ok(())
/// }
/// ```
pub struct Tunnel {
    conn: Arc<Conn>,
    /// Dropping it closes the connection (not so for an [`alias`](Tunnel::alias)).
    owns: bool,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("host", &self.host())
            .field("agent_pid", &self.agent_pid())
            .finish()
    }
}

impl Tunnel {
    /// The host name this tunnel was made for (`"localhost"` for local ones).
    pub fn host(&self) -> &str {
        self.conn.host()
    }

    /// The agent's process ID on its host.
    pub fn agent_pid(&self) -> u32 {
        self.conn.hello().pid
    }

    /// Whether the tunnel takes calls: `false` once it was closed, or once
    /// its agent is known to be gone (it exited, its connection ended, or
    /// it broke the protocol). A `true` is no promise: a host cut off from
    /// the network is noticed only when a call or ssh's keepalive times out.
    pub fn is_connected(&self) -> bool {
        !self.conn.is_closed()
    }

    /// Bounds each call made on this tunnel from now on to `timeout`,
    /// counted from the call ([`call`](Tunnel::call) or
    /// [`call_async`](Tunnel::call_async)), whether it is waited for or
    /// `.await`ed; `None` (the default) waits as long as the call runs. A
    /// call that times out gives [`Error::Timeout`](crate::Error::Timeout);
    /// it keeps running on the host if it was sent (one that could not even
    /// be sent in time is not sent at all), its late result is discarded,
    /// and the tunnel stays usable. [`Pending::wait_timeout`] overrides it
    /// for one call.
    pub fn set_call_timeout(&self, timeout: Option<Duration>) {
        self.conn.set_call_timeout(timeout);
    }

    /// The call timeout set by [`set_call_timeout`](Tunnel::set_call_timeout)
    /// or [`TunnelBuilder::call_timeout`].
    pub fn call_timeout(&self) -> Option<Duration> {
        self.conn.call_timeout()
    }

    /// The SHA-256 (hex) of the agent executable as it was shipped and
    /// checked on the host, which names it in the host's cache; `None` for
    /// local tunnels, which run the file itself.
    pub fn agent_sha256(&self) -> Option<&str> {
        Some(self.conn.hello().exe_sha256.as_str()).filter(|h| !h.is_empty())
    }

    /// Whether connecting uploaded the agent binary (the host had no valid
    /// cached copy). Always `false` for local tunnels.
    pub fn uploaded(&self) -> bool {
        self.conn.uploaded()
    }

    /// Calls `f` on the agent and waits for its result (bounded by the
    /// tunnel's [call timeout](Tunnel::set_call_timeout), if any).
    ///
    /// Arity, argument types and result type are checked at compile time: a
    /// function returning `Result<T, E>` gives `chopsticks::Result<T>`, with
    /// `E` arriving as [`Error::Remote`](crate::Error::Remote).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) (the function returned
    /// `Err`), [`Error::Panic`](crate::Error::Panic),
    /// [`Error::Disconnected`](crate::Error::Disconnected) (the agent went
    /// away), and the other [`Error`](crate::Error) variants of a call's life.
    pub fn call<F: RemoteFn>(&self, f: F, args: F::Args) -> Result<F::Output> {
        self.call_async(f, args).wait()
    }

    /// Starts a call on the agent and returns at once; wait for the result
    /// with [`Pending::wait`], [`Pending::wait_timeout`] or `.await`.
    pub fn call_async<F: RemoteFn>(&self, f: F, args: F::Args) -> Pending<F::Output> {
        let _ = f;
        match self.conn.call(F::ID, F::NAME, &args) {
            Ok((req, slot)) => Pending::in_flight(Arc::clone(&self.conn), slot, req, F::NAME),
            Err(error) => Pending::failed(error),
        }
    }

    /// Copies the file or directory tree `local` on this machine to
    /// `remote` on the host: streamed, checked by SHA-256 at both ends, and
    /// written atomically (each file to a temporary file beside its target,
    /// made durable, then renamed into place). Files the host has with this
    /// content already are not sent. Modes are kept; symbolic links inside
    /// a tree are sent as links. Bounded as a whole by the call timeout.
    ///
    /// A file replaces what is at `remote`, a symbolic link too (it is not
    /// written through, as `cp` would). A tree goes into the directory
    /// `remote` (created when missing), which may be a link to a directory
    /// and keeps its own mode and owner; what is inside follows the source.
    ///
    /// # Errors
    /// [`Error::Transfer`](crate::Error::Transfer) naming the path and what
    /// to do (a missing parent directory, permission denied, a full disk
    /// ...), with the destination unchanged; or any error of a call.
    pub fn put(
        &self,
        local: impl AsRef<std::path::Path>,
        remote: impl AsRef<std::path::Path>,
    ) -> Result<crate::Transfer> {
        self.put_with(local, remote, &crate::FileOptions::new())
    }

    /// [`put`](Tunnel::put) with options: mode, owner, parent directories.
    ///
    /// # Errors
    /// As [`put`](Tunnel::put).
    pub fn put_with(
        &self,
        local: impl AsRef<std::path::Path>,
        remote: impl AsRef<std::path::Path>,
        options: &crate::FileOptions,
    ) -> Result<crate::Transfer> {
        let local = local.as_ref();
        let source = crate::files::Source::Path(local);
        crate::files::put(
            self,
            source,
            local,
            remote.as_ref(),
            options,
            crate::files::Run::default(),
        )
    }

    /// Writes `bytes` from memory to the file `remote` on the host, as
    /// [`put`](Tunnel::put) writes a file (mode `0o644` unless `options`
    /// say otherwise).
    ///
    /// # Errors
    /// As [`put`](Tunnel::put).
    pub fn put_bytes(
        &self,
        bytes: &[u8],
        remote: impl AsRef<std::path::Path>,
        options: &crate::FileOptions,
    ) -> Result<crate::Transfer> {
        let source = crate::files::Source::Bytes { bytes, mode: 0o644 };
        let local = std::path::Path::new("");
        crate::files::put(
            self,
            source,
            local,
            remote.as_ref(),
            options,
            crate::files::Run::default(),
        )
    }

    /// Copies the file or tree `remote` on the host to `local` on this
    /// machine, as [`put`](Tunnel::put) does the other way. Whatever the
    /// host sends stays inside `local` (no absolute paths, `..`, or paths
    /// through links), and setuid and setgid bits are dropped unless
    /// [`FileOptions::mode`](crate::FileOptions::mode) sets them.
    ///
    /// # Errors
    /// As [`put`](Tunnel::put).
    pub fn fetch(
        &self,
        remote: impl AsRef<std::path::Path>,
        local: impl AsRef<std::path::Path>,
    ) -> Result<crate::Transfer> {
        self.fetch_with(remote, local, &crate::FileOptions::new())
    }

    /// [`fetch`](Tunnel::fetch) with options.
    ///
    /// # Errors
    /// As [`put`](Tunnel::put).
    pub fn fetch_with(
        &self,
        remote: impl AsRef<std::path::Path>,
        local: impl AsRef<std::path::Path>,
        options: &crate::FileOptions,
    ) -> Result<crate::Transfer> {
        crate::files::fetch(
            self,
            remote.as_ref(),
            local.as_ref(),
            options,
            crate::files::Run::default(),
        )
    }

    /// The same connection, for work on another thread that the tunnel
    /// outlives (a [`TransferHandle`](crate::TransferHandle) borrows the
    /// tunnel for that); dropping it does not close the tunnel.
    pub(crate) fn alias(&self) -> Tunnel {
        Tunnel {
            conn: Arc::clone(&self.conn),
            owns: false,
        }
    }

    /// [`put_with`](Tunnel::put_with) on a thread of its own: returns at
    /// once; [`wait`](crate::TransferHandle::wait) for the result, or drop
    /// the handle to cancel the transfer (the host then keeps its old file
    /// and no temporary file).
    ///
    /// ```
    /// # use chopsticks::{FileOptions, Tunnel};
    /// # #[chopsticks::main]
    /// # fn main() -> chopsticks::Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("put-async-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("big"), vec![7u8; 1 << 20]).unwrap();
    /// let t = Tunnel::local()?;
    /// let upload = t.put_async(dir.join("big"), dir.join("copy"), &FileOptions::new());
    /// // ... other calls on `t` meanwhile ...
    /// let sent = upload.wait()?;
    /// assert_eq!(sent.bytes, 1 << 20);
    /// # std::fs::remove_dir_all(dir).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_async(
        &self,
        local: impl AsRef<std::path::Path>,
        remote: impl AsRef<std::path::Path>,
        options: &crate::FileOptions,
    ) -> crate::TransferHandle<'_> {
        let (local, remote) = (local.as_ref().to_owned(), remote.as_ref().to_owned());
        let options = options.clone();
        crate::TransferHandle::start(self, move |t, cancel| {
            let source = crate::files::Source::Path(&local);
            let run = crate::files::Run {
                timeout: None,
                cancel: Some(cancel),
            };
            crate::files::put(t, source, &local, &remote, &options, run)
        })
    }

    /// [`fetch_with`](Tunnel::fetch_with) on a thread of its own, as
    /// [`put_async`](Tunnel::put_async).
    pub fn fetch_async(
        &self,
        remote: impl AsRef<std::path::Path>,
        local: impl AsRef<std::path::Path>,
        options: &crate::FileOptions,
    ) -> crate::TransferHandle<'_> {
        let (remote, local) = (remote.as_ref().to_owned(), local.as_ref().to_owned());
        let options = options.clone();
        crate::TransferHandle::start(self, move |t, cancel| {
            let run = crate::files::Run {
                timeout: None,
                cancel: Some(cancel),
            };
            crate::files::fetch(t, &remote, &local, &options, run)
        })
    }

    /// Starts closing without waiting: asks the agent to exit and closes its
    /// input. Dropping the tunnel then takes no longer than the slowest of
    /// the agents closed this way (a group closes its hosts in parallel).
    pub(crate) fn begin_close(&self) {
        self.conn.begin_close();
    }

    /// Finishes a [`begin_close`](Tunnel::begin_close): waits until
    /// `deadline` for the agent to exit, then stops it.
    pub(crate) fn finish_close_by(&self, deadline: std::time::Instant) {
        self.conn.finish_close_by(deadline);
    }

    /// Shuts the agent down: asks it to exit, kills it if it has not after
    /// two seconds, and fails the calls still waiting with
    /// [`Error::Disconnected`](crate::Error::Disconnected). Calls made
    /// afterwards fail the same way. Dropping the tunnel does the same.
    pub fn close(&self) {
        self.conn.close();
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if self.owns {
            self.conn.close();
        }
    }
}

/// A per-session token the agent echoes in its preamble.
fn nonce() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tunnels_and_pending_calls_cross_threads() {
        fn check<T: Send + Sync>() {}
        check::<super::Tunnel>();
        check::<super::Pending<String>>();
        check::<crate::Group>();
    }
}
