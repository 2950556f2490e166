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
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod kind;
mod peer;
mod pending;
mod start;
mod stream;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub use builder::{TunnelBuilder, ENV_AGENT_BINARY};
pub(crate) use conn::CLOSE_GRACE;
pub use conn::{interrupt, interrupted};

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
use conn::{Conn, Sending};

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

    /// Whether its agent changes nothing
    /// ([`TunnelBuilder::check_only`]).
    pub fn is_check_only(&self) -> bool {
        self.conn.check_only()
    }

    /// Bounds each call made on this tunnel from now on to `timeout`,
    /// counted from the call ([`call`](Tunnel::call) or
    /// [`call_async`](Tunnel::call_async)), whether it is waited for or
    /// `.await`ed; `None` (the default) waits as long as the call runs. A
    /// call that times out gives [`Error::Timeout`](crate::Error::Timeout)
    /// and is cancelled on the host if it was sent (the function sees
    /// [`agent::cancelled`](crate::agent::cancelled); one that could not
    /// even be sent in time is not sent at all), its late result is
    /// discarded, and the tunnel stays usable. [`Pending::wait_timeout`] overrides it
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
        self.call_now(f, args).wait()
    }

    /// Starts a call on the agent and returns at once; wait for the result
    /// with [`Pending::wait`], [`Pending::wait_timeout`] or `.await`.
    ///
    /// Calls made in a burst go to each agent together: a call made while
    /// other calls of this tunnel are in flight, or right after another
    /// `call_async` of this thread (on any tunnel, with no wait between
    /// them), is written with the calls that follow it: when this thread
    /// waits for any call, when another waits for one of them, or, if none
    /// is waited for, within about a millisecond of the burst's end. A
    /// burst of calls then costs each agent one write, not one each. A call
    /// made alone is written at once.
    pub fn call_async<F: RemoteFn>(&self, f: F, args: F::Args) -> Pending<F::Output> {
        self.start(f, args, Sending::Corked)
    }

    /// A call written at once, for a caller that waits for it now or hands
    /// it to a thread that does.
    pub(crate) fn call_now<F: RemoteFn>(&self, f: F, args: F::Args) -> Pending<F::Output> {
        self.start(f, args, Sending::Now)
    }

    fn start<F: RemoteFn>(&self, f: F, args: F::Args, sending: Sending) -> Pending<F::Output> {
        let _ = f;
        match self.conn.call(F::ID, F::NAME, &args, sending) {
            Ok((req, slot)) => Pending::in_flight(Arc::clone(&self.conn), slot, req, F::NAME),
            Err(error) => Pending::failed(error),
        }
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
