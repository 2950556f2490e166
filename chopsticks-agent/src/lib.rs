//! The agent side of [chopsticks](https://docs.rs/chopsticks): the registry of
//! `#[remote]` functions, the wire format shared with the controller, and the
//! dispatch loop a process runs when it is started as an agent.
//!
//! Users depend on `chopsticks`, which re-exports what they need from here
//! (`chopsticks::agent`). What both sides agree on is in [`wire`] (the frames)
//! and [`contract`] (environment, markers, arguments, wire IDs); both are
//! described in `docs/PROTOCOL.md`.

#![warn(missing_docs)]

mod agent;
mod askpass;
mod entry;

pub mod contract;
pub mod flow;
pub mod janitor;
pub mod registry;
pub mod sync;
pub mod value;
pub mod wire;

pub use agent::cancel::{call_started, cancelled, CancelToken};
pub use agent::panic_message;

/// The streams of the `#[remote]` call running on this thread (see
/// `docs/PROTOCOL.md`, "Streams"): what the controller streams to it, and
/// what it streams back before its reply.
pub mod stream {
    pub use crate::agent::streams::{input, output, InputStream, OutputStream};
}
pub use entry::{
    check_only, depth, has_entry_point, max_depth, run_if_requested, tool, tool_if_named,
    EntryPoint,
};
pub use registry::{Registration, Registry, RegistryError};
