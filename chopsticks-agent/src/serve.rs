//! Agent mode: the dispatch loop a process runs when a controller started it.

use std::cell::RefCell;
use std::ffi::OsString;
use std::panic::{self, AssertUnwindSafe};
use std::process;
use std::sync::mpsc;

use crate::registry::Registry;
use crate::stdio;
use crate::wire::{self, Failure, Hello, Response};
use crate::workers::Workers;

/// Set by the controller to the session nonce: this process is an agent.
pub const ENV_AGENT: &str = "CHOPSTICKS_AGENT";
/// Set by the SSH bootstrap to the SHA-256 this executable should have.
pub const ENV_AGENT_SHA256: &str = "CHOPSTICKS_AGENT_SHA256";
/// Set by the SSH bootstrap when it started a cached copy whose size it
/// checked but not its hash: the agent checks its own SHA-256 first.
pub const ENV_AGENT_CHECK: &str = "CHOPSTICKS_AGENT_CHECK";

/// Set once `run_if_requested` ran in this process.
static ENTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
    ENTERED.load(std::sync::atomic::Ordering::SeqCst)
        || inventory::iter::<EntryPoint>.into_iter().next().is_some()
}

/// Serves as an agent, then exits, when this process was started as one;
/// returns at once otherwise.
///
/// Call it first in `main` (or put `#[chopsticks::main]` on `main`): a
/// process started as an agent must not run the program's own work. The
/// environment variable that marks an agent is removed before any remote
/// function runs, so processes they start are ordinary processes.
pub fn run_if_requested() {
    ENTERED.store(true, std::sync::atomic::Ordering::SeqCst);
    let Some(nonce) = std::env::var_os(ENV_AGENT) else {
        return;
    };
    let exe_sha256 = std::env::var(ENV_AGENT_SHA256).unwrap_or_default();
    let check = std::env::var_os(ENV_AGENT_CHECK).is_some();
    let log_level = std::env::var(crate::logger::ENV_LOG_LEVEL)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for var in [
        ENV_AGENT,
        ENV_AGENT_SHA256,
        ENV_AGENT_CHECK,
        crate::logger::ENV_LOG_LEVEL,
    ] {
        std::env::remove_var(var);
    }
    let code = match serve(nonce, exe_sha256, check, log_level) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("chopsticks agent: {message}");
            1
        }
    };
    process::exit(code)
}

fn serve(nonce: OsString, exe_sha256: String, check: bool, log_level: u8) -> Result<(), String> {
    let registry = Registry::get().map_err(|e| e.to_string())?;
    if check && !exe_sha256.is_empty() {
        check_own_hash(&nonce.to_string_lossy(), &exe_sha256)?;
    }
    let protocol = stdio::take_protocol_fds()
        .map_err(|e| format!("cannot set up the protocol file descriptors: {e}"))?;
    install_panic_hook();

    let hello = Response::Hello(Hello {
        protocol: wire::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        fingerprint: registry.fingerprint(),
        functions: registry.iter().map(|r| r.id()).collect(),
        exe_sha256,
        pid: process::id(),
    });
    let mut first = format!("{} {}\n", wire::PREAMBLE, nonce.to_string_lossy()).into_bytes();
    first.extend(wire::encode_frame(&hello).map_err(|e| e.to_string())?);
    let (exit_tx, exit_rx) = mpsc::channel();
    let workers = Workers::new(registry, protocol.input, protocol.output, exit_tx);
    workers
        .send(&first)
        .map_err(|e| format!("cannot greet the controller: {e}"))?;
    crate::logger::install(&workers, log_level);
    workers
        .start()
        .map_err(|e| format!("cannot start the agent's threads: {e}"))?;
    exit_rx
        .recv()
        .unwrap_or_else(|_| Err("every worker thread ended".into()))
}

/// The SSH bootstrap checked only the size of a cached agent: check its
/// SHA-256 before serving. A corrupt copy removes itself and says so; the
/// controller then connects again and uploads a good one.
fn check_own_hash(nonce: &str, expected: &str) -> Result<(), String> {
    use std::io::Write;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my executable: {e}"))?;
    let (actual, _) = std::fs::File::open("/proc/self/exe")
        .or_else(|_| std::fs::File::open(&exe))
        .and_then(crate::value::sha256_hex)
        .map_err(|e| format!("cannot read my executable {}: {e}", exe.display()))?;
    if actual == expected {
        return Ok(());
    }
    let _ = std::fs::remove_file(&exe);
    let message = format!(
        "the cached agent {} is corrupt (sha256 {actual}, expected {expected}); it was removed",
        exe.display()
    );
    // Still on the protocol's stdout: the bootstrap's error marker.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "chopsticks-error {nonce} {message}");
    let _ = out.flush();
    Err(message)
}

pub(crate) fn dispatch(registry: &Registry, fn_id: u64, args: &[u8]) -> Result<String, Failure> {
    let Some(function) = registry.lookup(fn_id) else {
        return Err(Failure::UnknownFunction { fn_id });
    };
    IN_CALL.with(|c| *c.borrow_mut() = Some(None));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| function.invoke(args)));
    let captured = IN_CALL.with(|c| c.borrow_mut().take()).flatten();
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let (message, location) = captured.unwrap_or_else(|| (panic_message(&*payload), None));
            Err(Failure::Panic { message, location })
        }
    }
}

/// A panic's message and `file:line:column`.
type PanicInfo = (String, Option<String>);

thread_local! {
    /// `Some` while a call runs on this thread; the panic hook stores the
    /// message and location there instead of printing them.
    static IN_CALL: RefCell<Option<Option<PanicInfo>>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let captured = IN_CALL.with(|c| match &mut *c.borrow_mut() {
            Some(slot) => {
                let location = info.location().map(|l| l.to_string());
                *slot = Some((panic_message(info.payload()), location));
                true
            }
            None => false,
        });
        if !captured {
            default(info);
        }
    }));
}

/// The message of a panic payload (`panic!`'s text), for reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
