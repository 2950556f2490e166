//! Agent mode: greet the controller, then serve its calls until it leaves.
//!
//! `workers` reads requests and runs them (through `dispatch`), `output`
//! is the one writer back, `logger` forwards `log` records through it, and
//! `stdio` moves the protocol off the standard streams first.

pub(crate) mod cancel;
mod dispatch;
mod logger;
mod output;
mod stdio;
pub(crate) mod streams;
mod workers;

use std::process;
use std::sync::mpsc;
use std::time::Duration;

pub use dispatch::panic_message;

use crate::contract::PREAMBLE;
use crate::registry::Registry;
use crate::wire::{self, Hello, Response};
use output::Frames;
use workers::Workers;

/// What the controller told this agent through its environment.
pub(crate) struct Settings {
    pub nonce: String,
    /// The SHA-256 the bootstrap expects this executable to have.
    pub exe_sha256: String,
    /// The controller's log level (0 = off ... 5 = trace).
    pub log_level: u8,
    /// How many calls may run on threads of their own at once.
    pub max_call_threads: usize,
}

/// How long the calls still running when the controller leaves get to see
/// that they are cancelled and stop (killing what they started) before the
/// agent exits.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Serves until the controller leaves (`Ok`) or the protocol breaks; then
/// the calls still running are cancelled, and get [`EXIT_GRACE`] to stop.
pub(crate) fn serve(settings: Settings) -> Result<(), String> {
    let registry = Registry::get().map_err(|e| e.to_string())?;
    let protocol = stdio::take_protocol_fds()
        .map_err(|e| format!("cannot set up the protocol file descriptors: {e}"))?;
    dispatch::install_panic_hook();

    let hello = Response::Hello(Hello {
        protocol: wire::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        fingerprint: registry.fingerprint(),
        functions: registry.iter().map(|r| r.id()).collect(),
        exe_sha256: settings.exe_sha256,
        pid: process::id(),
    });
    let mut first = format!("{PREAMBLE} {}\n", settings.nonce).into_bytes();
    first.extend(wire::encode_frame(&hello).map_err(|e| e.to_string())?);
    let output = Frames::new(protocol.output);
    output
        .send(&first)
        .map_err(|e| format!("cannot greet the controller: {e}"))?;
    logger::install(&output, settings.log_level);
    let (exit_tx, exit_rx) = mpsc::channel();
    let workers = Workers::new(
        registry,
        protocol.input,
        output,
        exit_tx,
        settings.max_call_threads,
    );
    workers
        .start()
        .map_err(|e| format!("cannot start the agent's threads: {e}"))?;
    let exit = exit_rx
        .recv()
        .unwrap_or_else(|_| Err("every worker thread ended".into()));
    workers.cancels.cancel_all(EXIT_GRACE);
    exit
}
