//! `Tunnel`: one agent, local or remote, and the calls made on it.

mod bootstrap;
mod conn;
mod deadlines;
mod greet;
mod image;
mod pending;
mod ssh;
mod stderr;

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub use pending::Pending;

use crate::agent::{ENV_AGENT, ENV_AGENT_CHECK, ENV_AGENT_SHA256, ENV_LOG_LEVEL};
use crate::error::{Error, Result};
use crate::RemoteFn;
use conn::{Conn, Launch};
use greet::Refusal;

pub use ssh::{TunnelBuilder, ENV_AGENT_BINARY};

/// The host name of local tunnels (as in Python chopsticks).
pub const LOCALHOST: &str = "localhost";

/// How long a local agent gets to start and say hello.
const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The test-harness filter that selects [`agent_test!`](crate::agent_test)'s
/// entry. A binary whose `main` enters agent mode first never looks at it.
pub(crate) const AGENT_ENTRY_ARGS: [&str; 5] = [
    "__chopsticks_agent_entry",
    "--include-ignored",
    "--nocapture",
    "--test-threads=1",
    "-q",
];

const LOCAL_ADVICE: &str = "; the agent is this program started again: its `main` must begin \
    with `chopsticks::agent::run_if_requested()` or carry `#[chopsticks::main]`, and a test \
    binary needs `chopsticks::agent_test!();` at its root";

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
    /// Starts this program again as a local agent (a subprocess), for tests
    /// and for work on the controller host itself. Its host name is
    /// `"localhost"`.
    ///
    /// # Errors
    /// [`Error::Spawn`] when the executable cannot be started (or when this
    /// process is itself an agent that never entered agent mode, which would
    /// recurse); [`Error::Handshake`] when it does not start as an agent:
    /// `main` must begin with [`run_if_requested`](crate::agent::run_if_requested)
    /// or carry [`#[chopsticks::main]`](crate::main).
    pub fn local() -> Result<Tunnel> {
        let exe = std::env::current_exe().map_err(|source| Error::Spawn {
            host: LOCALHOST.into(),
            program: "the current executable".into(),
            source: Arc::new(source),
        })?;
        refuse_recursion(LOCALHOST, &exe)?;
        refuse_without_entry(LOCALHOST)?;
        Tunnel::start_local(&exe)
    }

    /// Starts the given executable as a local agent, e.g. a fixture binary
    /// built from the same source with `#[chopsticks::main]`.
    ///
    /// # Errors
    /// As for [`Tunnel::local`].
    pub fn local_binary(program: impl AsRef<Path>) -> Result<Tunnel> {
        let program = program.as_ref();
        refuse_recursion(LOCALHOST, program)?;
        Tunnel::start_local(program)
    }

    /// Starts `program` as a local agent, its checks done.
    fn start_local(program: &Path) -> Result<Tunnel> {
        let nonce = nonce();
        let mut command = Command::new(program);
        command
            .args(AGENT_ENTRY_ARGS)
            .env(ENV_AGENT, &nonce)
            .env(ENV_LOG_LEVEL, log_level().to_string())
            .env_remove(ENV_AGENT_SHA256)
            .env_remove(ENV_AGENT_CHECK);
        let conn = Conn::start(Launch {
            host: LOCALHOST.into(),
            program: program.display().to_string(),
            command,
            nonce,
            connect_timeout: LOCAL_CONNECT_TIMEOUT,
            upload_timeout: LOCAL_CONNECT_TIMEOUT,
            ship: None,
            explain: explain_local,
        })?;
        Ok(Tunnel { conn })
    }

    /// The host name this tunnel was made for (`"localhost"` for local ones).
    pub fn host(&self) -> &str {
        self.conn.host()
    }

    /// The agent's process ID on its host.
    pub fn agent_pid(&self) -> u32 {
        self.conn.hello().pid
    }

    /// Bounds every call's wait on this tunnel ([`call`](Tunnel::call),
    /// [`Pending::wait`]) to `timeout` after the call was sent; `None` (the
    /// default) waits as long as the call runs. A call that times out gives
    /// [`Error::Timeout`]; it keeps running on the host, its late result is
    /// discarded, and the tunnel stays usable. [`Pending::wait_timeout`]
    /// overrides it for one call.
    pub fn set_call_timeout(&self, timeout: Option<Duration>) {
        self.conn.set_call_timeout(timeout);
    }

    /// The call timeout set by [`set_call_timeout`](Tunnel::set_call_timeout)
    /// or [`TunnelBuilder::call_timeout`].
    pub fn call_timeout(&self) -> Option<Duration> {
        self.conn.call_timeout()
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
    /// `E` arriving as [`Error::Remote`].
    ///
    /// # Errors
    /// [`Error::Remote`] (the function returned `Err`), [`Error::Panic`],
    /// [`Error::Disconnected`] (the agent went away), and the other
    /// [`Error`] variants of a call's life.
    pub fn call<F: RemoteFn>(&self, f: F, args: F::Args) -> Result<F::Output> {
        self.call_async(f, args).wait()
    }

    /// Starts a call on the agent and returns at once; wait for the result
    /// with [`Pending::wait`], [`Pending::wait_timeout`] or `.await`.
    pub fn call_async<F: RemoteFn>(&self, f: F, args: F::Args) -> Pending<F::Output> {
        let _ = f;
        self.conn.call(F::ID, F::NAME, &args)
    }

    /// Shuts the agent down: asks it to exit, kills it if it has not after
    /// two seconds, and fails the calls still waiting with
    /// [`Error::Disconnected`]. Calls made afterwards fail the same way.
    /// Dropping the tunnel does the same.
    pub fn close(&self) {
        self.conn.close();
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.conn.close();
    }
}

/// Why a local agent did not start, with what to do about it.
fn explain_local(host: &str, failed: conn::Failed) -> Error {
    let message = match failed.refusal {
        Refusal::Agent(message) | Refusal::Script(message) => message,
        Refusal::Stale(message) => {
            return Error::Handshake {
                host: host.into(),
                message,
                stderr: failed.stderr,
            }
        }
    };
    let message = match failed.status {
        Some(status) => format!("{message} ({}){LOCAL_ADVICE}", conn::describe(status)),
        None => format!("{message}{LOCAL_ADVICE}"),
    };
    Error::Handshake {
        host: host.into(),
        message,
        stderr: failed.stderr,
    }
}

/// A process started as an agent that never entered agent mode must not
/// start another copy of itself.
fn refuse_recursion(host: &str, program: &Path) -> Result<()> {
    if std::env::var_os(ENV_AGENT).is_some() {
        return Err(Error::Spawn {
            host: host.into(),
            program: program.display().to_string(),
            source: Arc::new(std::io::Error::other(
                "this process was started as a chopsticks agent but never entered agent mode, \
                 and will not start another copy of itself: begin `main` with \
                 `chopsticks::agent::run_if_requested()` or put `#[chopsticks::main]` on it",
            )),
        });
    }
    Ok(())
}

/// This program is about to start a copy of itself as an agent: without an
/// entry point the copy would run `main` itself, on the agent's host.
pub(crate) fn refuse_without_entry(host: &str) -> Result<()> {
    if crate::agent::has_entry_point() {
        return Ok(());
    }
    Err(Error::Config {
        host: host.into(),
        message: "this program cannot be its own agent: its `main` does not start with \
                  `#[chopsticks::main]` or `chopsticks::agent::run_if_requested()`, so the \
                  copy started as the agent would run `main` itself; add one (in an \
                  integration test, `chopsticks::agent_test!();` at the crate root)"
            .into(),
    })
}

/// The controller's `log::max_level()` as a number (0 = off ... 5 = trace):
/// agents forward records up to this level.
pub(crate) fn log_level() -> u8 {
    log::max_level() as u8
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
