//! Starting an agent: the bootstrap script, the handshake, the shipped
//! image, the agent's stderr, and the advice for a start that failed. It
//! uses nothing of `conn`, which starts agents with it.

pub(crate) mod advice;
pub(crate) mod bootstrap;
pub(crate) mod greet;
pub(crate) mod image;
pub(crate) mod link;
pub(crate) mod native;
pub(crate) mod stderr;
pub(crate) mod strip;

use std::process::ExitStatus;
use std::sync::Arc;

use crate::contract::{ENV_CHECK_ONLY, ENV_DEPTH, ENV_MAX_CALL_THREADS, ENV_MAX_DEPTH, ENV_TOOL};

use image::Image;

/// A start that did not reach the agent's hello.
pub(crate) struct Failed {
    pub refusal: Refusal,
    /// The exit status of what was started, when it ended.
    pub status: Option<ExitStatus>,
    /// Its last stderr lines.
    pub stderr: Vec<String>,
}

/// Why there is no greeting.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The bootstrap script reported an error (the text after its marker).
    Script(String),
    /// The agent (or what carries it) ended, or printed something else.
    Agent(String),
    /// The agent is from another chopsticks version.
    Stale(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal::Agent(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::Agent(message.to_owned())
    }
}

/// What to upload when the bootstrap asks, and what platform it is for
/// (`uname -s`, `uname -m`), when known; and the agents for other machines,
/// by Rust's name of their architecture.
pub(crate) struct Ship {
    pub image: Arc<Image>,
    pub platform: Option<(String, String)>,
    pub others: Vec<(String, Arc<Image>)>,
    /// Whether the host is near: the agent is then sent as it is.
    pub near: link::Near,
}

impl Ship {
    /// The SHA-256 of every image it may ship.
    pub(crate) fn hashes(&self) -> Vec<String> {
        std::iter::once(&self.image)
            .chain(self.others.iter().map(|(_, image)| image))
            .map(|image| image.sha256.clone())
            .collect()
    }
}

/// What the controller tells an agent it starts about its place and its
/// bounds (environment variables of the contract).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How deep the agent sits.
    pub depth: u32,
    /// How deep agents may nest.
    pub max_depth: u32,
    /// Calls it may run on threads of their own at once.
    pub max_call_threads: usize,
    /// Whether it must change nothing ([`crate::agent::check_only`]).
    pub check_only: bool,
}

impl Limits {
    /// The variables, as `NAME` and value.
    /// The tool's name ([`crate::agent::tool`]) travels with them: an agent
    /// passes on the name its controller gave it.
    pub(crate) fn env(&self) -> [(&'static str, String); 5] {
        [
            (ENV_DEPTH, self.depth.to_string()),
            (ENV_MAX_DEPTH, self.max_depth.to_string()),
            (ENV_MAX_CALL_THREADS, self.max_call_threads.to_string()),
            (ENV_TOOL, crate::agent::tool()),
            (ENV_CHECK_ONLY, u8::from(self.check_only).to_string()),
        ]
    }
}
