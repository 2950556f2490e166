//! The mode switch: a process started by a controller serves as an agent
//! instead of running the program's own `main`.

use std::process;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use crate::contract::{AGENT_ENV, ENV_AGENT, ENV_AGENT_SHA256, ENV_JANITOR, ENV_LOG_LEVEL};

/// Set once `run_if_requested` ran in this process.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// The mark of an agent entry point compiled into a binary:
/// `#[chopsticks::main]` and `chopsticks::agent_test!()` register one.
#[derive(Debug)]
pub struct EntryPoint(());

impl EntryPoint {
    /// Used by generated code only.
    #[doc(hidden)]
    pub const fn new() -> Self {
        EntryPoint(())
    }
}

inventory::collect!(EntryPoint);

/// Whether this binary can serve as its own agent: it has an entry point
/// (`#[chopsticks::main]`, `agent_test!()`), or `run_if_requested` ran.
/// Without one, a copy started as an agent would run the program's own
/// `main` instead.
pub fn has_entry_point() -> bool {
    ENTERED.load(SeqCst) || inventory::iter::<EntryPoint>.into_iter().next().is_some()
}

/// Serves as an agent, then exits, when this process was started as one;
/// returns at once otherwise.
///
/// Call it first in `main` (or put `#[chopsticks::main]` on `main`): a
/// process started as an agent must not run the program's own work. The
/// environment variable that marks an agent is removed before any remote
/// function runs, so processes they start are ordinary processes.
pub fn run_if_requested() {
    ENTERED.store(true, SeqCst);
    if std::env::var_os(ENV_JANITOR).is_some() {
        crate::janitor::serve();
    }
    let Some(nonce) = std::env::var_os(ENV_AGENT) else {
        return;
    };
    let settings = crate::agent::Settings {
        nonce: nonce.to_string_lossy().into_owned(),
        exe_sha256: std::env::var(ENV_AGENT_SHA256).unwrap_or_default(),
        log_level: std::env::var(ENV_LOG_LEVEL)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    for var in AGENT_ENV {
        std::env::remove_var(var);
    }
    let code = match crate::agent::serve(settings) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("chopsticks agent: {message}");
            1
        }
    };
    process::exit(code)
}
