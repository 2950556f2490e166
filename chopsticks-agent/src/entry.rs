//! The mode switch: a process started by a controller serves as an agent
//! instead of running the program's own `main`.

use std::process;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;

use crate::contract::{
    AGENT_ENV, DEFAULT_MAX_CALL_THREADS, DEFAULT_MAX_DEPTH, ENV_AGENT, ENV_AGENT_SHA256,
    ENV_ASKPASS, ENV_CHECK_ONLY, ENV_DEPTH, ENV_JANITOR, ENV_LOG_LEVEL, ENV_MAX_CALL_THREADS,
    ENV_MAX_DEPTH, ENV_TOOL,
};

/// Set once `run_if_requested` ran in this process.
static ENTERED: AtomicBool = AtomicBool::new(false);
/// How deep this process sits: 0 for a program, 1 for its agent ...
static DEPTH: AtomicU32 = AtomicU32::new(0);
/// The limit an agent was given by its controller (0: none given).
static MAX_DEPTH: AtomicU32 = AtomicU32::new(0);
/// Whether this agent's controller made it check-only.
static CHECK_ONLY: AtomicBool = AtomicBool::new(false);

/// Whether this process is an agent that must change nothing: its
/// controller asked for it (`TunnelBuilder::check_only`, the kit's
/// `--apply-plan` check pass). Operations then run in check mode whatever
/// mode they are given, and files sent to it are refused. `false` in a
/// program.
pub fn check_only() -> bool {
    CHECK_ONLY.load(SeqCst)
}

/// How deep this process sits: 0 for a program a person started, 1 for an
/// agent it started, 2 for an agent that agent's functions started ...
pub fn depth() -> u32 {
    DEPTH.load(SeqCst)
}

/// The deepest an agent may sit: the limit this agent's controller passed
/// on, or in a program `CHOPSTICKS_MAX_DEPTH`, or [`DEFAULT_MAX_DEPTH`].
pub fn max_depth() -> u32 {
    match MAX_DEPTH.load(SeqCst) {
        0 => std::env::var(ENV_MAX_DEPTH)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_DEPTH),
        limit => limit,
    }
}

/// The tool name an agent's controller passed (`CHOPSTICKS_TOOL`).
static TOOL: OnceLock<Option<String>> = OnceLock::new();

/// The longest tool name kept, in bytes.
const MAX_TOOL: usize = 64;

/// The name of the tool this process belongs to: in an agent, the name
/// its controller passed (`CHOPSTICKS_TOOL`), since the agent's own file
/// is named by its hash; in a program, its executable's file name (a
/// trailing ` (deleted)`, Linux's mark of a replaced file, dropped). Only
/// `[A-Za-z0-9._+-]` is kept (other bytes become `_`), without a leading
/// `.` or `-`, at most 64 bytes; `chopsticks` when nothing is left (see
/// [`tool_if_named`] for the name alone).
pub fn tool() -> String {
    tool_if_named().unwrap_or_else(|| "chopsticks".to_owned())
}

/// As [`tool`], without the fallback: `None` in an agent whose controller
/// passed no tool name, or when nothing of the name is left. State kept
/// per tool (pending handlers) must not be shared under a made-up name.
pub fn tool_if_named() -> Option<String> {
    if let Some(tool) = TOOL.get() {
        return tool.clone();
    }
    let exe = std::env::current_exe().ok()?;
    exe_tool_name(&exe.file_name()?.to_string_lossy())
}

/// The tool name of an executable named `name` (its file name as
/// `current_exe` gives it: with ` (deleted)` when it was replaced).
fn exe_tool_name(name: &str) -> Option<String> {
    tool_name(name.strip_suffix(" (deleted)").unwrap_or(name))
}

/// `name` reduced to a tool name (see [`tool`]); `None` when nothing is
/// left.
fn tool_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '+' | '-' => c,
            _ => '_',
        })
        .skip_while(|c| matches!(c, '.' | '-'))
        .take(MAX_TOOL)
        .collect();
    Some(kept).filter(|k| !k.is_empty())
}

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
    if std::env::var_os(ENV_ASKPASS).is_some() {
        crate::askpass::answer();
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
        max_call_threads: std::env::var(ENV_MAX_CALL_THREADS)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_CALL_THREADS),
    };
    let number = |var| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
    DEPTH.store(number(ENV_DEPTH).unwrap_or(1), SeqCst);
    MAX_DEPTH.store(number(ENV_MAX_DEPTH).unwrap_or(DEFAULT_MAX_DEPTH), SeqCst);
    let tool = std::env::var(ENV_TOOL).unwrap_or_default();
    let _ = TOOL.set(tool_name(&tool));
    CHECK_ONLY.store(
        std::env::var_os(ENV_CHECK_ONLY).is_some_and(|v| v == "1"),
        SeqCst,
    );
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

#[cfg(test)]
mod tests {
    use super::{exe_tool_name, tool_name};

    #[test]
    fn tool_names_keep_a_safe_alphabet() {
        let name = |n: &str| tool_name(n).unwrap_or_default();
        assert_eq!(name("deploy"), "deploy");
        assert_eq!(name("my tool$(x)"), "my_tool__x_");
        assert_eq!(name("-.-x"), "x");
        assert_eq!(tool_name(""), None);
        assert_eq!(tool_name("-."), None);
        assert_eq!(name("é"), "_");
        assert_eq!(name(&"a".repeat(100)).len(), 64);
        // A program rebuilt while it runs keeps its name.
        assert_eq!(exe_tool_name("deploy (deleted)").as_deref(), Some("deploy"));
        assert_eq!(exe_tool_name("deploy").as_deref(), Some("deploy"));
    }
}
