//! Command tunnels: any command that gives a shell on its stdin and stdout,
//! with the bootstrap appended as `sh -c '<script>'`.

use std::ffi::OsString;
use std::process::Command;

use super::{link, Way};
use crate::error::{Error, Result};
use crate::tunnel::builder::TunnelBuilder;
use crate::tunnel::start::Failed;
use crate::tunnel::Tunnel;

/// When the agent did not greet and nothing more specific is known.
const FALLBACK: &str = "the command must run its last arguments (`sh -c <script>`) on the host \
    with stdin and stdout passed through: try it by hand with `sh -c 'echo ok'`; and the agent \
    is this program started again: its `main` must carry `#[chopsticks::main]`";

impl Tunnel {
    /// Connects through `argv`, a command that gives a shell on its stdin
    /// and stdout (`kubectl exec -i pod --`, `chroot /srv/root`, `ip netns
    /// exec ns1` ...), with the defaults of [`TunnelBuilder::command`];
    /// `host` is the name results and errors carry.
    ///
    /// # Errors
    /// See [`TunnelBuilder::connect`].
    pub fn command<I, S>(host: &str, argv: I) -> Result<Tunnel>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        TunnelBuilder::command(host, argv).connect()
    }
}

/// How a command tunnel runs the bootstrap `script`.
pub(super) fn way(builder: &TunnelBuilder, argv: &[OsString], script: String) -> Result<Way> {
    let config = |message: &str| Error::Config {
        host: builder.host.clone(),
        message: message.to_owned(),
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(config(
            "the command is empty: give the program that opens a shell, e.g. \
             [\"kubectl\", \"exec\", \"-i\", \"pod\", \"--\"]",
        ));
    };
    if builder.options.user.is_some() {
        return Err(config(
            "`user` does not apply to command tunnels: put the user into the command \
             (e.g. `runuser -u NAME --`), or use `sudo`",
        ));
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .args(crate::tunnel::start::bootstrap::sh_argv(
            script,
            builder.options.sudo(),
        ));
    Ok(Way {
        program: program.to_string_lossy().into_owned(),
        start: super::Start::Command(command),
        advice: Box::new(advice),
        fallback: FALLBACK,
        askpass: None,
        near: link::far(),
        learning: None,
        login: super::Login::Known,
    })
}

/// What the command's own failure means: little can be known of any
/// command, but a missing `sh` is recognised.
pub(super) fn advice(host: &str, _message: &str, failed: &Failed) -> Option<Error> {
    let no_sh = failed.stderr.iter().any(|line| {
        line.contains("exec: \"sh\"")
            || line.contains("sh: not found")
            || line.contains("sh: No such file or directory")
    });
    no_sh.then(|| Error::Bootstrap {
        host: host.to_owned(),
        message: "there is no `sh` where the command runs it; chopsticks needs a POSIX shell \
                  on the host to start its agent"
            .into(),
        stderr: failed.stderr.clone(),
    })
}
