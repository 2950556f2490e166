//! The kinds of tunnel. Each file says how its kind starts the agent (a
//! [`Link`]) and what its failures mean; the rest is shared: the agent
//! binary, the bootstrap, the handshake and everything after it.

mod command;
mod docker;
pub(crate) mod local;
mod masters;
mod mux;
pub(crate) mod ssh;
pub(crate) mod via;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use super::askpass::Askpass;
use super::builder::{Kind, Options, TunnelBuilder};
use super::conn::{Conn, Launch, Link};
use super::start::advice::KindAdvice;
use super::start::image::Image;
use super::start::link::{self, Near};
use super::start::{bootstrap, Limits, Ship};
use super::{nonce, Tunnel};
use crate::contract::ENV_AGENT;
use crate::error::{Error, Result};
use crate::names;

/// How the bootstrap is started.
enum Start {
    /// A program here.
    Command(Command),
    /// A program on a bastion, through its agent.
    Relay { via: via::Via, argv: Vec<String> },
    /// A session on the ssh master listening at `socket`, running
    /// `command`; `fallback` when no master listens there, `direct` (a
    /// connection of its own) when the master there does not answer or
    /// refuses.
    Shared {
        socket: PathBuf,
        command: String,
        /// The variables the session sends (`NAME=value`).
        env: Vec<std::ffi::OsString>,
        fallback: Box<Command>,
        direct: Box<Command>,
    },
}

/// What a kind that runs the bootstrap on its host supplies.
struct Way {
    /// What is started, for errors (`ssh`, `docker`, the command's program).
    program: String,
    /// What runs `script` on the host.
    start: Start,
    /// What the kind makes of its own program's failures.
    advice: KindAdvice,
    /// The advice when nothing more specific fits.
    fallback: &'static str,
    /// Answers ssh's password prompts while the tunnel connects.
    askpass: Option<Askpass>,
    /// Whether the host is near (asked on an upload only).
    near: Near,
    /// Work on the side while the tunnel starts (learning where its ssh
    /// master listens), waited for once it has.
    learning: Option<std::thread::JoinHandle<()>>,
    /// What is known of the login shell that runs the script.
    login: Login,
}

/// What a tunnel knows of the login shell of an ssh host with a kept
/// master (see [`masters::posix_login`]).
enum Login {
    /// Nothing to learn: another kind of tunnel, no master, sudo, or noted.
    Known,
    /// Not noted yet: the script runs under `sh`, and the agent says which
    /// login shell started it.
    Learn(PathBuf),
    /// Noted POSIX: the login shell runs the script itself. A start that
    /// fails then forgets the note and tries once more under `sh`.
    Trusted(PathBuf),
}

impl TunnelBuilder {
    /// Connects, ships the agent if the host has no cached copy, and waits
    /// for its hello.
    ///
    /// # Errors
    /// - [`Error::Config`](crate::Error::Config): a host, user or option that
    ///   could be mistaken for something else (a leading `-`, whitespace,
    ///   control characters), or an ssh option on another kind of tunnel;
    ///   nothing was run.
    /// - [`Error::Spawn`](crate::Error::Spawn): `ssh`, `docker` or the command
    ///   could not be started (not installed?).
    /// - [`Error::Connect`](crate::Error::Connect): the host could not be
    ///   reached: ssh could not connect or authenticate, the container does
    ///   not exist or is stopped, the docker daemon is down. The error says
    ///   which, and what to do.
    /// - [`Error::Bootstrap`](crate::Error::Bootstrap): the host could not store or run the agent.
    /// - [`Error::Handshake`](crate::Error::Handshake): the agent did not start, with advice (a C
    ///   library too old for this build, sudo wanting a password ...).
    pub fn connect(&self) -> Result<Tunnel> {
        connect(self)
    }
}

/// Connects `builder`'s tunnel.
fn connect(builder: &TunnelBuilder) -> Result<Tunnel> {
    validate(builder)?;
    if crate::tunnel::conn::interrupted() {
        return Err(Error::Interrupted {
            host: builder.host.clone(),
            function: None,
        });
    }
    match &builder.kind {
        Kind::Local => local::connect(builder),
        Kind::Ssh { .. } => bootstrapped(builder, |script| ssh::way(builder, script)),
        Kind::Docker { container } => {
            bootstrapped(builder, |script| docker::way(builder, container, script))
        }
        Kind::Command { argv } => {
            bootstrapped(builder, |script| command::way(builder, argv, script))
        }
    }
}

/// Refuses settings that the programs started could take for something
/// else (a leading `-`), that a shell could act on where ssh hands them to
/// one (`%h`, `%r` in a `ProxyCommand`), and options of another kind.
/// Nothing has run yet.
fn validate(builder: &TunnelBuilder) -> Result<()> {
    let config = |message: String| Error::Config {
        host: crate::output::printable(&builder.host).into_owned(),
        message: format!("refusing {message}"),
    };
    match &builder.kind {
        Kind::Ssh { destination } => {
            // `user@host` is ssh's own way to name the login.
            match destination.rsplit_once('@') {
                Some((user, host)) => {
                    names::user(user).map_err(config)?;
                    names::host(host).map_err(config)?;
                }
                None => names::host(destination).map_err(config)?,
            }
            if &builder.host != destination {
                names::host(&builder.host).map_err(config)?;
            }
        }
        Kind::Docker { container } => {
            names::host(container).map_err(config)?;
            names::host(&builder.host).map_err(config)?;
        }
        Kind::Command { .. } | Kind::Local => names::host(&builder.host).map_err(config)?,
    }
    if let Some(user) = &builder.options.user {
        match builder.kind {
            // docker's -u takes user[:group], by name or number.
            Kind::Docker { .. } => user.split(':').try_for_each(names::user),
            _ => names::user(user),
        }
        .map_err(config)?;
    }
    if let Some(user) = &builder.options.sudo {
        let ok = !user.starts_with('-')
            && !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(config(format!(
                "sudo user {user:?}: expected a user name (A-Z a-z 0-9 . _ -)"
            )));
        }
    }
    match builder.kind {
        Kind::Ssh { .. } => ssh::validate(builder),
        _ => match builder.ssh.first_set() {
            Some(option) => Err(Error::Config {
                host: builder.host.clone(),
                message: format!(
                    "`{option}` is an ssh option, and this is a {} tunnel; set it only on ssh hosts",
                    builder.kind.name()
                ),
            }),
            None => Ok(()),
        },
    }
}

/// Starts a tunnel whose host runs the bootstrap script: the agent is
/// shipped when the host has no good cached copy. A start that looks like a
/// lost race for the cache (another program's upload removed this agent
/// between the script's check and its `exec`) is tried once more, which
/// uploads it anew.
fn bootstrapped(builder: &TunnelBuilder, way: impl Fn(String) -> Result<Way>) -> Result<Tunnel> {
    let host = &builder.host;
    let agent_binary = builder.options.agent_binary();
    let program = match &agent_binary {
        Some(path) => path.clone(),
        None => current_exe(host)?,
    };
    refuse_recursion(host, &program)?;
    if agent_binary.is_none() {
        refuse_without_entry(host)?;
    }
    // Through a bastion, the agent sits below the bastion's.
    let parent = builder.ssh.via.as_ref().map(via::Via::depth);
    let limits = nesting(host, &builder.options, parent)?;
    let strip = !builder.options.ship_debug_info;
    let image = Image::of(&program, strip).map_err(|e| Error::Config {
        host: host.clone(),
        message: format!("cannot read the agent binary {}: {e}", program.display()),
    })?;
    // Without an agent binary of its own, the host must run this one.
    let platform = agent_binary
        .is_none()
        .then(|| (uname_s().to_owned(), std::env::consts::ARCH.to_owned()));
    let others = other_machines(builder, platform.as_ref(), strip)?;
    let login_of_last = std::cell::RefCell::new(Login::Known);
    let start = || {
        let nonce = nonce();
        let log_level = builder.options.log_level();
        let script = bootstrap::script(&image, &others, &nonce, log_level, limits);
        let Way {
            program,
            start,
            advice,
            fallback,
            askpass,
            near,
            learning,
            login,
        } = way(script)?;
        *login_of_last.borrow_mut() = login;
        // Until the hello: ssh asks for passwords while it connects.
        let _askpass = askpass;
        let link = match start {
            Start::Command(command) => spawn(host, &program, command)?,
            Start::Shared {
                socket,
                command,
                env,
                fallback,
                direct,
            } => {
                let deadline = Instant::now() + builder.options.connect_timeout;
                match mux::open(&socket, &command, &env, deadline) {
                    Ok(link) => link,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        return Err(Error::Interrupted {
                            host: host.clone(),
                            function: None,
                        })
                    }
                    Err(e) => {
                        log::debug!("chopsticks: {host}: {}: {e}", socket.display());
                        let gone = matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                        );
                        // `ssh` starts a master anew where none listens.
                        spawn(host, &program, *if gone { fallback } else { direct })?
                    }
                }
            }
            Start::Relay { via, argv } => {
                // The bastion sends the agent itself when it runs this one.
                let serve = Some((nonce.clone(), image.sha256.clone()));
                via::link(&via, argv, serve).map_err(|e| Error::Spawn {
                    host: host.clone(),
                    program: program.clone(),
                    source: Arc::new(e),
                })?
            }
        };
        let started = Conn::start(Launch {
            host: host.clone(),
            program,
            link,
            nonce,
            connect_timeout: builder.options.connect_timeout,
            upload_timeout: builder.options.upload_timeout,
            ship: Some(Ship {
                image: Arc::clone(&image),
                platform: platform.clone(),
                others: others.clone(),
                near,
            }),
            advice,
            fallback,
            sudo_password: builder
                .options
                .sudo
                .as_ref()
                .and(builder.options.passwords.clone()),
            depth: limits.depth,
            check_only: limits.check_only,
        });
        if let Some(learning) = learning {
            let _ = learning.join();
        }
        started
    };
    let lost = |e: &Error| {
        let hashes = std::iter::once(&image).chain(others.iter().map(|(_, i)| i));
        hashes.into_iter().any(|i| lost_race(e, &i.sha256))
    };
    let conn = match start() {
        Err(e) if lost(&e) => start()?,
        Err(e @ (Error::Handshake { .. } | Error::Bootstrap { .. })) => {
            // The login shell noted POSIX did not run the script (changed
            // since?): once more under `sh`, and it is learned again.
            let login = std::mem::replace(&mut *login_of_last.borrow_mut(), Login::Known);
            let Login::Trusted(link) = login else {
                return Err(e);
            };
            log::debug!("chopsticks: {host}: the noted login shell failed: {e}");
            masters::forget_shell(&link);
            start()?
        }
        started => started?,
    };
    conn.set_call_timeout(builder.options.call_timeout);
    let tunnel = Tunnel { conn, owns: true };
    if let Login::Learn(link) = login_of_last.into_inner() {
        learn_login(&tunnel, &link, builder.options.connect_timeout);
    }
    Ok(tunnel)
}

/// Asks the agent of `tunnel` which login shell started it, and notes it
/// for `link`; within `bound`, and nothing noted when it cannot say.
fn learn_login(tunnel: &Tunnel, link: &Path, bound: std::time::Duration) {
    let asked = tunnel
        .call_now(masters::login_shell, ())
        .wait_timeout(bound);
    if let Ok(Some(shell)) = asked {
        masters::remember_shell(link, &shell);
    }
}

/// The agents for hosts of other machines than `platform` (this
/// program's, when it is the agent), read and hashed.
///
/// # Errors
/// An architecture nobody knows, or a binary that cannot be read.
fn other_machines(
    builder: &TunnelBuilder,
    platform: Option<&(String, String)>,
    strip: bool,
) -> Result<Vec<(String, Arc<Image>)>> {
    let ours = platform.map(|(_, arch)| arch.as_str());
    let config = |message: String| Error::Config {
        host: builder.host.clone(),
        message,
    };
    let mut others = Vec::new();
    for (arch, path) in builder.options.agent_binaries() {
        if let Some(unknown) = arch.strip_prefix("unknown:") {
            return Err(config(format!(
                "`agent_binary_for(\"{unknown}\", ...)`: no such architecture; use Rust's \
                 name (aarch64, x86_64, arm, riscv64 ...) or what `uname -m` says"
            )));
        }
        if Some(arch.as_str()) == ours {
            continue;
        }
        let image = Image::of(&path, strip).map_err(|e| {
            config(format!(
                "cannot read the {arch} agent binary {}: {e}",
                path.display()
            ))
        })?;
        others.push((arch, image));
    }
    Ok(others)
}

/// Whether a start looks like a lost race for the cache rather than a
/// reason that would fail again: the agent exited before its hello and its
/// host said nothing at all, or said that the cached agent `sha256` was not
/// there to `exec` (dash: `exec: PATH: not found`; bash: `No such file or
/// directory`), which another program's upload can cause.
fn lost_race(error: &Error, sha256: &str) -> bool {
    let Error::Handshake {
        message, stderr, ..
    } = error
    else {
        return false;
    };
    let vanished = stderr.iter().any(|line| {
        line.contains(&format!("{sha256}: not found"))
            || line.contains(&format!("{sha256}: No such file"))
    });
    let silent = stderr.iter().all(|line| line.trim().is_empty());
    message.contains("exited before saying hello") && (vanished || silent)
}

/// Starts `command`; a missing program says so.
fn spawn(host: &str, program: &str, command: Command) -> Result<Link> {
    Link::spawn(command).map_err(|e| {
        let source = if e.kind() == std::io::ErrorKind::NotFound {
            std::io::Error::new(
                e.kind(),
                format!("{e}: is `{program}` installed and on PATH?"),
            )
        } else {
            e
        };
        Error::Spawn {
            host: host.to_owned(),
            program: program.to_owned(),
            source: Arc::new(source),
        }
    })
}

fn current_exe(host: &str) -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Config {
        host: host.to_owned(),
        message: format!("cannot find the running executable to ship: {e}"),
    })
}

/// A process started as an agent that never entered agent mode must not
/// start another copy of itself.
pub(crate) fn refuse_recursion(host: &str, program: &Path) -> Result<()> {
    if std::env::var_os(ENV_AGENT).is_some() {
        return Err(Error::Spawn {
            host: host.into(),
            program: program.display().to_string(),
            source: Arc::new(std::io::Error::other(
                "this process was started as a chopsticks agent but never entered agent mode, \
                 and will not start another copy of itself: begin `main` with \
                 `chopsticks::agent::run_if_requested()` or put `#[chopsticks::main]` on it",
            )),
        });
    }
    Ok(())
}

/// The limits of an agent this process starts; refused when it would sit
/// deeper than agents may nest.
/// `parent`: the depth of the agent that starts this one (a bastion's),
/// when it is not this process.
pub(crate) fn nesting(host: &str, options: &Options, parent: Option<u32>) -> Result<Limits> {
    let depth = parent.unwrap_or_else(crate::agent::depth) + 1;
    let max = options.max_depth.unwrap_or_else(crate::agent::max_depth);
    if depth <= max {
        return Ok(Limits {
            depth,
            max_depth: max,
            max_call_threads: options
                .max_call_threads
                .unwrap_or(crate::agent::DEFAULT_MAX_CALL_THREADS),
            // A check-only agent's functions start check-only agents.
            check_only: options.check_only || crate::agent::check_only(),
        });
    }
    let here = match (parent, depth - 1) {
        (Some(d), _) => format!("the bastion's agent, at depth {d},"),
        (None, 0) => "this program".to_owned(),
        (None, d) => format!("this agent, at depth {d},"),
    };
    Err(Error::Config {
        host: host.into(),
        message: format!(
            "agents nest too deep: {here} would start one at depth {depth}, beyond the limit \
             of {max}; do the work in this function instead, or raise the limit \
             (TunnelBuilder::max_depth, CHOPSTICKS_MAX_DEPTH) if the nesting is meant"
        ),
    })
}

/// This program is about to start a copy of itself as an agent: without an
/// entry point the copy would run `main` itself, on the agent's host.
pub(crate) fn refuse_without_entry(host: &str) -> Result<()> {
    if crate::agent::has_entry_point() {
        return Ok(());
    }
    Err(Error::Config {
        host: host.into(),
        message: "this program cannot be its own agent: its `main` does not start with \
                  `#[chopsticks::main]` or `chopsticks::agent::run_if_requested()`, so the \
                  copy started as the agent would run `main` itself; add one (in an \
                  integration test, `chopsticks::agent_test!();` at the crate root)"
            .into(),
    })
}

fn uname_s() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str, stderr: &[&str]) -> Error {
        Error::Handshake {
            host: "h".into(),
            message: message.into(),
            stderr: stderr.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    #[test]
    fn only_a_lost_race_is_tried_again() {
        let gone = "it exited before saying hello (the agent exited with status 127)";
        for said in [
            "sh: 1: exec: /root/.cache/chopsticks-0/abc123: not found",
            "bash: line 1: /tmp/chopsticks-0/abc123: No such file or directory",
        ] {
            assert!(lost_race(&refused(gone, &[said]), "abc123"), "{said}");
        }
        assert!(lost_race(&refused(gone, &[]), "abc123"));
        // What would fail again is reported at once.
        let glibc = "/x/abc123: version `GLIBC_2.34' not found";
        assert!(!lost_race(&refused(gone, &[glibc]), "abc123"));
        assert!(!lost_race(
            &refused(gone, &["usage: tool [OPTIONS]"]),
            "abc123"
        ));
        assert!(!lost_race(
            &refused("it sent a message before saying hello", &[]),
            "abc123"
        ));
        let bootstrap = Error::Bootstrap {
            host: "h".into(),
            message: "no cache directory".into(),
            stderr: Vec::new(),
        };
        assert!(!lost_race(&bootstrap, "abc123"));
    }
}
