//! Call `#[remote]` Rust functions on other hosts, type-checked, with nothing
//! installed there beforehand: the program ships itself.
//!
//! ```
//! use chopsticks::{facts, remote, Tunnel};
//!
//! /// Free bytes of the filesystem at `path`.
//! #[remote]
//! fn disk_free(path: String) -> std::io::Result<u64> {
//!     let meta = std::fs::metadata(&path)?; // (a real tool would statvfs)
//!     Ok(meta.len())
//! }
//!
//! #[chopsticks::main]
//! fn main() -> chopsticks::Result<()> {
//!     let t = Tunnel::local()?; // Tunnel::ssh("web1")? for a real host
//!     println!("{} is up", t.call(facts::hostname, ())?);
//!     let free: u64 = t.call(disk_free, ("/".to_string(),))?;
//!     # let _ = free;
//!     Ok(())
//! }
//! ```
//!
//! # Fleets
//! A [`Group`] calls many hosts at once and gives one result per host
//! ([`GroupResult`]); a [`Queue`] runs per-host sequences of calls with the
//! hosts independent. Deadlines: [`TunnelBuilder::connect_timeout`],
//! [`TunnelBuilder::call_timeout`], [`Group::call_timeout`],
//! [`Pending::wait_timeout`].
//!
//! ```no_run
//! use chopsticks::{facts, Group};
//!
//! #[chopsticks::main]
//! fn main() -> Result<(), chopsticks::GroupError> {
//!     let web = Group::new(["web1", "web2", "web3"]);
//!     for (host, kernel) in web.call(facts::kernel, ()).raise_failures()? {
//!         println!("{host}: {kernel}");
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # How it works
//! `#[remote]` turns a function's name into a zero-sized handle that still
//! calls the function locally (`disk_free("/".into())`) and carries its
//! argument tuple, result type and wire ID ([`RemoteFn`]). A [`Tunnel`]
//! starts a copy of the running executable as an *agent*; a call sends the
//! function's ID with its postcard-encoded arguments, the agent runs it on a
//! thread of its own, and the result comes back as JSON, so the controller
//! only ever parses plain data.
//!
//! Because the agent is the same binary, its `main` must notice that it is an
//! agent before doing anything else: put [`#[chopsticks::main]`](main) on
//! `main`, or call [`agent::run_if_requested`] first. Integration tests that
//! use [`Tunnel::local`] add [`agent_test!`] at their root.
//!
//! # The handle's costs
//! The name of a `#[remote]` function is a unit struct, not a `fn` item:
//! where a `fn` value is expected write `*name` (the handle derefs to the
//! function pointer), and a parameter or `let` of the same name cannot bind
//! it where it is visible. Keeping remote functions in a module of their own
//! (`tasks::user`) avoids both.
//!
//! # Linking
//! `#[remote]` functions register themselves with `inventory`. Functions in
//! a library crate the binary never uses are not linked in and so are not
//! callable; name something from such a crate (`use my_tasks as _;` is not
//! enough on every linker: call one of its functions) and check
//! [`agent::Registry::len`] in a test.

#![warn(missing_docs)]

extern crate self as chopsticks;

mod error;
mod files;
mod group;
mod output;
mod remote;
mod terminal;
mod tunnel;
mod utc;

pub mod facts;
pub mod names;
pub mod ops;
pub mod passwords;

pub use chopsticks_macros::{main, remote};
pub use error::{Error, RemoteError, Result};
pub use files::{
    Enqueue, Fetch, Put, Source, Transfer, TransferHandle, TransferOutcome, TransferTarget,
};
pub use group::{Group, GroupError, GroupResult, Host, Queue, QueueTarget, Queued, DEFAULT_FORKS};
pub use output::{printable, show_remote_stderr};
pub use passwords::{PasswordFor, PasswordPrompt};
pub use remote::RemoteFn;
pub use terminal::{color, set_color, show_progress, Color};
pub use tunnel::{
    interrupt, interrupted, Pending, Tunnel, TunnelBuilder, ENV_AGENT_BINARY, LOCALHOST,
};
pub use utc::UtcTime;

pub(crate) use chopsticks_agent::{contract, wire};

/// Agent mode: what a process needs to serve as an agent.
pub mod agent {
    pub use chopsticks_agent::contract::{
        DEFAULT_MAX_CALL_THREADS, DEFAULT_MAX_DEPTH, ENV_AGENT, ENV_AGENT_SHA256, ENV_CHECK_ONLY,
        ENV_LOG_LEVEL, ENV_MAX_DEPTH, ENV_TOOL,
    };
    pub use chopsticks_agent::registry::{Registration, Registry, RegistryError};
    pub use chopsticks_agent::{
        cancelled, check_only, depth, has_entry_point, max_depth, run_if_requested, stream, tool,
        tool_if_named, CancelToken,
    };
}

/// Adds the entry point that lets [`Tunnel::local`] use a test binary as its
/// agent. Invoke it once, at the root of each integration-test crate (or in
/// the crate root of a library whose unit tests use local tunnels):
///
/// ```ignore
/// chopsticks::agent_test!();
/// ```
///
/// It expands to an ignored `#[test]` named `__chopsticks_agent_entry`
/// (`contract::AGENT_ENTRY_FN`), which the tunnel runs (with
/// `--include-ignored`) in the re-executed copy.
#[macro_export]
macro_rules! agent_test {
    () => {
        #[test]
        #[ignore = "the entry point of chopsticks agents; Tunnel::local() runs it"]
        fn __chopsticks_agent_entry() {
            $crate::agent::run_if_requested();
        }

        $crate::__private::inventory::submit! {
            $crate::__private::EntryPoint::new()
        }
    };
}

// Not public API. Used by code that #[remote] generates.
#[doc(hidden)]
pub mod __private {
    pub use crate::remote::invoke;
    pub use crate::tunnel::images_hashed;
    pub use chopsticks_agent::contract::wire_id;
    pub use chopsticks_agent::registry::Registration;
    pub use chopsticks_agent::value::{
        decode_args, encode_return, ErrWrap, Fallible, ViaDisplay, ViaError,
    };
    pub use chopsticks_agent::wire::Failure;
    pub use chopsticks_agent::EntryPoint;
    pub use inventory;
}

// Not public API: the fuzz targets' entry points (`fuzz/`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use tunnel::fuzz as __fuzz;

#[cfg(test)]
mod tests {
    agent_test!();

    #[test]
    fn agent_test_defines_the_entry_the_contract_names() {
        let name = std::any::type_name_of_val(&__chopsticks_agent_entry);
        let fn_name = name.rsplit("::").next().unwrap_or_default();
        assert_eq!(fn_name, crate::contract::AGENT_ENTRY_FN);
        assert_eq!(crate::contract::AGENT_ENTRY_ARGS[0], fn_name);
    }
}
