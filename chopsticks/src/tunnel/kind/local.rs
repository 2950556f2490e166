//! Local tunnels: this program (or a given binary) started again as a
//! subprocess, for tests and for work on the controller's own host.

use std::path::Path;
use std::process::Command;

use super::{nesting, refuse_recursion, refuse_without_entry, spawn};
use crate::contract::{AGENT_ENTRY_ARGS, ENV_AGENT, ENV_AGENT_SHA256, ENV_LOG_LEVEL};
use crate::error::{Error, Result};
use crate::tunnel::builder::TunnelBuilder;
use crate::tunnel::conn::{Conn, Launch};
use crate::tunnel::{nonce, Tunnel};

/// When a local agent did not greet: what it must have.
const ADVICE: &str = "the agent is this program started again: its `main` must begin with \
    `chopsticks::agent::run_if_requested()` or carry `#[chopsticks::main]`, and a test binary \
    needs `chopsticks::agent_test!();` at its root";

impl Tunnel {
    /// Starts this program again as a local agent (a subprocess), for tests
    /// and for work on the controller host itself. Its host name is
    /// `"localhost"`. [`TunnelBuilder::local`] takes options.
    ///
    /// # Errors
    /// [`Error::Spawn`] when the executable cannot be started (or when this
    /// process is itself an agent that never entered agent mode, which would
    /// recurse); [`Error::Handshake`] when it does not start as an agent:
    /// `main` must begin with [`run_if_requested`](crate::agent::run_if_requested)
    /// or carry [`#[chopsticks::main]`](crate::main).
    pub fn local() -> Result<Tunnel> {
        TunnelBuilder::local().connect()
    }

    /// Starts the given executable as a local agent, e.g. a fixture binary
    /// built from the same source with `#[chopsticks::main]`.
    ///
    /// # Errors
    /// As for [`Tunnel::local`].
    pub fn local_binary(program: impl AsRef<Path>) -> Result<Tunnel> {
        TunnelBuilder::local()
            .agent_binary(program.as_ref())
            .connect()
    }
}

/// Starts a local agent with `builder`'s options.
pub(crate) fn connect(builder: &TunnelBuilder) -> Result<Tunnel> {
    let (options, host) = (&builder.options, builder.host.as_str());
    if options.user.is_some() || options.sudo.is_some() {
        return Err(Error::Config {
            host: host.into(),
            message: "`user` and `sudo` do not apply to local tunnels: to run the agent as \
                      another user here, use `TunnelBuilder::command(\"localhost\", [\"env\"])` \
                      with `sudo(USER)`"
                .into(),
        });
    }
    let program = match options.agent_binary.clone() {
        Some(program) => program,
        None => {
            let exe = std::env::current_exe().map_err(|source| Error::Spawn {
                host: host.into(),
                program: "the current executable".into(),
                source: std::sync::Arc::new(source),
            })?;
            refuse_recursion(host, &exe)?;
            refuse_without_entry(host)?;
            exe
        }
    };
    refuse_recursion(host, &program)?;
    let limits = nesting(host, options, None)?;
    let nonce = nonce();
    let level = options.log_level().to_string();
    let mut command = Command::new(&program);
    command
        .args(AGENT_ENTRY_ARGS)
        .env(ENV_AGENT, &nonce)
        .env(ENV_LOG_LEVEL, &level)
        .envs(limits.env())
        .env_remove(ENV_AGENT_SHA256);
    let shown = program.display().to_string();
    let link = spawn(host, &shown, command)?;
    let conn = Conn::start(Launch {
        host: host.into(),
        program: shown,
        link,
        nonce,
        connect_timeout: options.connect_timeout,
        upload_timeout: options.upload_timeout,
        ship: None,
        advice: Box::new(|_, _, _| None),
        fallback: ADVICE,
        sudo_password: None,
        depth: limits.depth,
        check_only: limits.check_only,
    })?;
    conn.set_call_timeout(options.call_timeout);
    Ok(Tunnel { conn, owns: true })
}
