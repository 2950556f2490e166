//! What a failed start means and what to do about it, common to every kind
//! of tunnel; each kind first reads what its own program (ssh, docker ...)
//! said.

use super::{Failed, Refusal};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::error::Error;

/// What a kind of tunnel makes of a failed start before the common advice:
/// `Some` error when its own program (not the agent) failed.
pub(crate) type KindAdvice = Box<dyn Fn(&str, &str, &Failed) -> Option<Error> + Send + Sync>;

/// Advice when nothing more specific fits: the agent started, but not as
/// an agent.
pub(crate) const NOT_AN_AGENT: &str = "the agent is this program started again: its `main` must \
    begin with `chopsticks::agent::run_if_requested()` or carry `#[chopsticks::main]`";

/// The error for a start that did not reach the hello: bootstrap and
/// version failures as they are; then what `kind` says; then a handshake
/// error with advice read from the agent's last stderr lines (`fallback`
/// when none fits).
pub(crate) fn explain(host: &str, failed: Failed, kind: KindAdvice, fallback: &str) -> Error {
    let host = host.to_owned();
    let message = match &failed.refusal {
        Refusal::Script(message) => {
            return Error::Bootstrap {
                host,
                message: message.clone(),
                stderr: failed.stderr,
            }
        }
        Refusal::Stale(message) => {
            return Error::Handshake {
                host,
                message: message.clone(),
                stderr: failed.stderr,
            }
        }
        Refusal::Agent(message) => message.clone(),
    };
    if let Some(error) = kind(&host, &message, &failed) {
        return error;
    }
    let advice = agent_advice(&failed.stderr).unwrap_or(fallback);
    let message = match failed.status {
        Some(status) => format!("{message} ({}); {advice}", describe(status)),
        None => format!("{message}; {advice}"),
    };
    Error::Handshake {
        host,
        message,
        stderr: failed.stderr,
    }
}

/// How an agent's process ended, in words.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the agent exited with status {code}"),
        (None, Some(signal)) => format!("the agent was killed by signal {signal}"),
        _ => format!("the agent ended: {status}"),
    }
}

/// What to do, from what the host said when the agent did not start.
fn agent_advice(stderr: &[String]) -> Option<&'static str> {
    let said = |needle: &str| stderr.iter().any(|line| line.contains(needle));
    Some(
        if said("a password is required") || said("a terminal is required") {
            "sudo wants a password: allow the login user to run the agent without one \
             (NOPASSWD in sudoers), or connect as the target user"
        } else if said("GLIBC_") || said("GLIBCXX_") {
            "the host's C library is older than the one this program was built against: \
             build the agent with `--target x86_64-unknown-linux-musl` (static, runs on any \
             Linux) and set it with `agent_binary` or CHOPSTICKS_AGENT_BINARY"
        } else if said("Exec format error") || said("cannot execute binary file") {
            "the host cannot run this executable (another architecture?): build the agent \
             for the host and set it with `agent_binary` or CHOPSTICKS_AGENT_BINARY"
        } else if said("not found") && said("sudo") {
            "sudo is not installed on the host"
        } else {
            return None;
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(lines: &[&str]) -> Failed {
        Failed {
            refusal: Refusal::Agent("it exited before saying hello".into()),
            status: None,
            stderr: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn the_advice_follows_what_the_host_said() {
        let message = |lines: &[&str]| {
            explain("h", failed(lines), Box::new(|_, _, _| None), NOT_AN_AGENT).to_string()
        };
        assert!(message(&["sudo: a password is required"]).contains("NOPASSWD"));
        assert!(message(&["./agent: version `GLIBC_2.34' not found"]).contains("musl"));
        assert!(message(&["sh: ./agent: Exec format error"]).contains("architecture"));
        assert!(message(&[]).contains("run_if_requested"));
        let script = Failed {
            refusal: Refusal::Script("no cache directory".into()),
            ..failed(&[])
        };
        assert!(matches!(
            explain("h", script, Box::new(|_, _, _| None), NOT_AN_AGENT),
            Error::Bootstrap { .. }
        ));
    }
}
