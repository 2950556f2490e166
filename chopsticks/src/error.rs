//! The one error type of chopsticks.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// `Result<T, chopsticks::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between `Tunnel::local()` and a call's result.
///
/// Each variant is one phase of a call's life. Every error names the host and,
/// where there is one, the function; `Display` says what happened and what to
/// try.
#[non_exhaustive]
#[derive(Clone)]
pub enum Error {
    /// The agent process could not be started at all.
    Spawn {
        /// The tunnel's host name.
        host: String,
        /// What was started.
        program: String,
        /// Why it failed (shared, so that errors can be cloned for reports).
        source: Arc<io::Error>,
    },
    /// The tunnel's settings were refused before anything ran (a host name
    /// that looks like an option, an unreadable agent binary ...).
    Config {
        /// The tunnel's host name.
        host: String,
        /// What was wrong.
        message: String,
    },
    /// `ssh` could not connect or authenticate: unknown host, refused port,
    /// bad key, host key mismatch, timeout. `stderr` has ssh's own words.
    Connect {
        /// The tunnel's host name.
        host: String,
        /// What happened.
        message: String,
        /// The last lines ssh wrote to stderr.
        stderr: Vec<String>,
    },
    /// The bootstrap on the host could not store or run the agent: no usable
    /// cache directory, an upload that did not match, another platform.
    Bootstrap {
        /// The tunnel's host name.
        host: String,
        /// What the bootstrap reported, with advice.
        message: String,
        /// The last lines the host wrote to stderr.
        stderr: Vec<String>,
    },
    /// The agent started but did not greet as a chopsticks agent of this
    /// protocol version: it exited, printed something else, or is stale.
    Handshake {
        /// The tunnel's host name.
        host: String,
        /// What went wrong, with advice.
        message: String,
        /// The last lines the agent wrote to stderr.
        stderr: Vec<String>,
    },
    /// The agent binary does not contain the function: it was built from
    /// other source than this controller.
    UnknownFunction {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
    },
    /// The arguments could not be encoded, or the call is too large.
    Encode {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// The result could not be decoded into the function's return type, or
    /// the agent could not decode the arguments.
    Decode {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The remote function returned `Err(e)`.
    Remote {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
        /// `e`'s message; its source chain is [`std::error::Error::source`].
        error: RemoteError,
    },
    /// The remote function panicked. The agent lives on.
    Panic {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// No result arrived in time. The tunnel stays usable; the call is
    /// cancelled on the host (the function sees
    /// [`agent::cancelled`](crate::agent::cancelled)) and its late result is
    /// discarded.
    Timeout {
        /// The tunnel's host name.
        host: String,
        /// The function's path.
        function: &'static str,
        /// How long the caller waited.
        after: Duration,
    },
    /// The program was interrupted ([`interrupt`](crate::interrupt), the
    /// kit's Ctrl-C) before the call finished or was made: the call was
    /// cancelled on the host, whose function sees
    /// [`agent::cancelled`](crate::agent::cancelled).
    Interrupted {
        /// The tunnel's host name.
        host: String,
        /// The function's path, when a call was interrupted (not a
        /// connection).
        function: Option<&'static str>,
    },
    /// The agent went away (exited, was killed, or the tunnel was closed)
    /// before the call finished.
    Disconnected {
        /// The tunnel's host name.
        host: String,
        /// The function's path, when a call was waiting.
        function: Option<&'static str>,
        /// Why: exit status or close.
        reason: String,
        /// The last lines the agent wrote to stderr.
        stderr: Vec<String>,
    },
    /// A file transfer failed at `path`: on the host, or on this machine
    /// (`local`). No file at the destination is half written: each keeps its
    /// old content unless it was replaced whole (a tree whose last renames
    /// fail can have some of its files replaced; directories it created
    /// stay).
    Transfer {
        /// The tunnel's host name.
        host: String,
        /// Where it failed.
        path: std::path::PathBuf,
        /// Whether `path` is on this machine.
        local: bool,
        /// What went wrong, and what to do.
        message: String,
    },
    /// The agent sent something that breaks the protocol.
    Protocol {
        /// The tunnel's host name.
        host: String,
        /// What was wrong.
        message: String,
    },
    /// Something on this side, not on the host, kept a result from being
    /// made: a queued call whose queue never ran, a callback or group job
    /// that panicked in this program, a finished call polled again.
    Controller {
        /// The host the work was for.
        host: String,
        /// The function's path, when a call was concerned.
        function: Option<&'static str>,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The host the error happened on.
    pub fn host(&self) -> &str {
        match self {
            Error::Spawn { host, .. }
            | Error::Config { host, .. }
            | Error::Connect { host, .. }
            | Error::Bootstrap { host, .. }
            | Error::Handshake { host, .. }
            | Error::UnknownFunction { host, .. }
            | Error::Encode { host, .. }
            | Error::Decode { host, .. }
            | Error::Remote { host, .. }
            | Error::Panic { host, .. }
            | Error::Timeout { host, .. }
            | Error::Interrupted { host, .. }
            | Error::Disconnected { host, .. }
            | Error::Protocol { host, .. }
            | Error::Transfer { host, .. }
            | Error::Controller { host, .. } => host,
        }
    }

    /// The function the error happened in, if it happened in a call.
    pub fn function(&self) -> Option<&'static str> {
        match self {
            Error::UnknownFunction { function, .. }
            | Error::Encode { function, .. }
            | Error::Decode { function, .. }
            | Error::Remote { function, .. }
            | Error::Panic { function, .. }
            | Error::Timeout { function, .. } => Some(function),
            Error::Disconnected { function, .. }
            | Error::Interrupted { function, .. }
            | Error::Controller { function, .. } => *function,
            Error::Spawn { .. }
            | Error::Config { .. }
            | Error::Connect { .. }
            | Error::Bootstrap { .. }
            | Error::Handshake { .. }
            | Error::Transfer { .. }
            | Error::Protocol { .. } => None,
        }
    }

    /// Whether the host was not reached (or was lost), rather than that
    /// something failed on it: what a recap counts as unreachable.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Spawn { .. }
                | Error::Connect { .. }
                | Error::Bootstrap { .. }
                | Error::Handshake { .. }
                | Error::Disconnected { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Much of the text comes from the host: it reaches the terminal
        // without control characters (line feeds stay).
        let clean = crate::output::printable_lines;
        match self {
            Error::Spawn {
                host,
                program,
                source,
            } => write!(f, "{host}: cannot start the agent `{program}`: {source}"),
            Error::Config { host, message } => write!(f, "{host}: {message}"),
            Error::Connect {
                host,
                message,
                stderr,
            } => {
                write!(f, "{host}: {}", clean(message))?;
                write_tail(f, host, stderr)
            }
            Error::Bootstrap {
                host,
                message,
                stderr,
            } => {
                write!(f, "{host}: cannot install the agent: {}", clean(message))?;
                write_tail(f, host, stderr)
            }
            Error::Handshake {
                host,
                message,
                stderr,
            } => {
                write!(f, "{host}: the agent did not start: {}", clean(message))?;
                write_tail(f, host, stderr)
            }
            Error::UnknownFunction { host, function } => write!(
                f,
                "{host}: the agent has no function `{function}`: the agent binary was built from \
                 other source than this program; rebuild it from the same source"
            ),
            Error::Encode {
                host,
                function,
                message,
            } => write!(
                f,
                "{host}: cannot send the arguments of `{function}`: {message}"
            ),
            Error::Decode {
                host,
                function,
                message,
            } => write!(f, "{host}: cannot decode `{function}`: {}", clean(message)),
            Error::Remote {
                host,
                function,
                error,
            } => write!(f, "{host}: `{function}` failed: {error}"),
            Error::Panic {
                host,
                function,
                message,
                location,
            } => match location {
                Some(at) => write!(
                    f,
                    "{host}: `{function}` panicked at {}: {}",
                    clean(at),
                    clean(message)
                ),
                None => write!(f, "{host}: `{function}` panicked: {}", clean(message)),
            },
            Error::Timeout {
                host,
                function,
                after,
            } => write!(
                f,
                "{host}: `{function}` timed out after {after:?}; the host was told to stop it, and \
                 a late result will be discarded"
            ),
            Error::Interrupted {
                host,
                function: Some(function),
            } => write!(
                f,
                "{host}: `{function}` was interrupted: the call was cancelled on the host"
            ),
            Error::Interrupted {
                host,
                function: None,
            } => write!(f, "{host}: interrupted before the host was reached"),
            Error::Disconnected {
                host,
                function,
                reason,
                stderr,
            } => {
                match function {
                    Some(function) => write!(
                        f,
                        "{host}: lost the agent during `{function}`: {}",
                        clean(reason)
                    )?,
                    None => write!(f, "{host}: lost the agent: {}", clean(reason))?,
                }
                write_tail(f, host, stderr)
            }
            Error::Transfer {
                host,
                path,
                local,
                message,
            } => {
                let here = if *local { " (on this machine)" } else { "" };
                write!(f, "{host}: {}{here}: {}", path.display(), clean(message))
            }
            Error::Protocol { host, message } => {
                write!(f, "{host}: protocol error: {}", clean(message))
            }
            Error::Controller {
                host,
                function: Some(function),
                message,
            } => write!(f, "{host}: `{function}`: {message}"),
            Error::Controller {
                host,
                function: None,
                message,
            } => write!(f, "{host}: {message}"),
        }
    }
}

fn write_tail(f: &mut fmt::Formatter<'_>, host: &str, stderr: &[String]) -> fmt::Result {
    if !stderr.is_empty() {
        f.write_str("; last stderr lines:")?;
        for line in stderr {
            write!(f, "\n  [{host}] {line}")?;
        }
    }
    Ok(())
}

/// The `Display` text and the remote source chain: what `fn main() ->
/// chopsticks::Result<()>` prints on failure should read like the error.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        if source.is_some() {
            f.write_str("\n\nCaused by:")?;
        }
        while let Some(cause) = source {
            write!(f, "\n    {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } => Some(&**source),
            Error::Remote { error, .. } => error.source.as_deref().map(|e| e as _),
            _ => None,
        }
    }
}

/// The error a remote function returned: its message, and its source chain
/// as further `RemoteError`s (through [`std::error::Error::source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    message: String,
    source: Option<Box<RemoteError>>,
}

impl RemoteError {
    pub(crate) fn new(message: String, chain: Vec<String>) -> RemoteError {
        let source = chain.into_iter().rev().fold(None, |source, message| {
            Some(Box::new(RemoteError { message, source }))
        });
        RemoteError { message, source }
    }

    /// The error's own message (`e.to_string()` on the remote side).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The messages of the whole chain, this error's first.
    pub fn chain(&self) -> impl Iterator<Item = &str> {
        std::iter::successors(Some(self), |e| e.source.as_deref()).map(|e| e.message.as_str())
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The host's text, without control characters (line feeds stay).
        let clean = crate::output::printable_lines;
        f.write_str(&clean(&self.message))?;
        if f.alternate() {
            for cause in self.chain().skip(1) {
                write!(f, ": {}", clean(cause))?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_error_chain_is_a_source_chain() {
        let e = RemoteError::new("outer".into(), vec!["middle".into(), "root".into()]);
        assert_eq!(e.chain().collect::<Vec<_>>(), ["outer", "middle", "root"]);
        assert_eq!(format!("{e:#}"), "outer: middle: root");
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.to_string(), "middle");
    }

    #[test]
    fn errors_name_host_and_function() {
        let e = Error::Timeout {
            host: "web1".into(),
            function: "tasks::slow",
            after: Duration::from_millis(50),
        };
        assert_eq!(e.host(), "web1");
        assert_eq!(e.function(), Some("tasks::slow"));
        assert!(e
            .to_string()
            .starts_with("web1: `tasks::slow` timed out after 50ms"));
    }

    /// A host's text reaches the terminal without escapes; its lines stay.
    #[test]
    fn host_text_in_errors_carries_no_control_characters() {
        let hostile = "title\x1b]0;owned\x07\r\nline two\u{9b}2J";
        let remote = Error::Remote {
            host: "web1".into(),
            function: "f",
            error: RemoteError::new(hostile.into(), vec![hostile.into()]),
        };
        let panic = Error::Panic {
            host: "web1".into(),
            function: "f",
            message: hostile.into(),
            location: Some(hostile.into()),
        };
        let lost = Error::Disconnected {
            host: "web1".into(),
            function: None,
            reason: hostile.into(),
            stderr: Vec::new(),
        };
        for e in [remote, panic, lost] {
            let text = format!("{e:?}");
            assert!(!text.contains(['\x1b', '\x07', '\r', '\u{9b}']), "{text:?}");
            assert!(text.contains("title^[]0;owned^G^M\nline two"), "{text:?}");
        }
    }
}
