//! The agent side of [chopsticks](https://docs.rs/chopsticks): the registry of
//! `#[remote]` functions, the wire format shared with the controller, and the
//! dispatch loop a process runs when it is started as an agent.
//!
//! Users depend on `chopsticks`, which re-exports what they need from here
//! (`chopsticks::agent`). The wire format is described in `docs/PROTOCOL.md`.

#![warn(missing_docs)]

mod logger;
mod serve;
mod stdio;
mod workers;

pub mod registry;
pub mod value;
pub mod wire;

pub use logger::{level_from_wire, ENV_LOG_LEVEL};
pub use registry::{Registration, Registry, RegistryError};
pub use serve::{
    has_entry_point, panic_message, run_if_requested, EntryPoint, ENV_AGENT, ENV_AGENT_CHECK,
    ENV_AGENT_SHA256,
};
