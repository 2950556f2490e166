//! Starting an agent: the bootstrap script, the handshake, the shipped
//! image, the agent's stderr, and the advice for a start that failed. It
//! uses nothing of `conn`, which starts agents with it.

pub(crate) mod advice;
pub(crate) mod bootstrap;
pub(crate) mod greet;
pub(crate) mod image;
pub(crate) mod stderr;
pub(crate) mod strip;

use std::process::ExitStatus;
use std::sync::Arc;

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
/// (`uname -s`, `uname -m`), when known.
pub(crate) struct Ship {
    pub image: Arc<Image>,
    pub platform: Option<(String, String)>,
}
