//! Docker tunnels: `docker exec -i CONTAINER sh -c '<bootstrap>'` into a
//! running container, and what docker's failures mean.

use std::process::Command;
use std::sync::Arc;

use super::Way;
use crate::error::{Error, Result};
use crate::tunnel::builder::TunnelBuilder;
use crate::tunnel::start::advice::NOT_AN_AGENT;
use crate::tunnel::start::bootstrap::sh_argv;
use crate::tunnel::start::Failed;
use crate::tunnel::Tunnel;

/// The program that runs `docker exec`.
const DOCKER: &str = "docker";

impl Tunnel {
    /// Connects to the running container `container` with `docker exec -i`
    /// and the defaults of [`TunnelBuilder::docker`]: the agent is shipped
    /// and cached inside the container as on an ssh host.
    ///
    /// # Errors
    /// See [`TunnelBuilder::connect`]: a missing or stopped container, a
    /// container without `sh`, docker not installed or its daemon down each
    /// say what to do.
    pub fn docker(container: &str) -> Result<Tunnel> {
        TunnelBuilder::docker(container).connect()
    }
}

/// How a docker tunnel runs the bootstrap `script`.
pub(super) fn way(builder: &TunnelBuilder, container: &str, script: String) -> Result<Way> {
    let mut command = Command::new(DOCKER);
    command.args(["exec", "-i"]);
    if let Some(user) = &builder.options.user {
        command.args(["-u", user]);
    }
    command
        .arg("--")
        .arg(container)
        .args(sh_argv(script, builder.options.sudo()));
    Ok(Way {
        program: DOCKER.to_owned(),
        start: super::Start::Command(command),
        advice: Box::new(advice),
        fallback: NOT_AN_AGENT,
        askpass: None,
        // The daemon of this machine (or of DOCKER_HOST, maybe far).
        near: Arc::new(|| {
            std::env::var("DOCKER_HOST").map_or(true, |h| h.is_empty() || h.starts_with("unix://"))
        }),
        learning: None,
        login: super::Login::Known,
    })
}

/// What docker's own failure means.
pub(super) fn advice(host: &str, _message: &str, failed: &Failed) -> Option<Error> {
    let said = |needle: &str| failed.stderr.iter().any(|line| line.contains(needle));
    let connect = |message: String| {
        Some(Error::Connect {
            host: host.to_owned(),
            message,
            stderr: failed.stderr.clone(),
        })
    };
    if said("No such container") {
        connect(format!(
            "there is no container named {host:?}; `docker ps` lists the running ones"
        ))
    } else if said("is not running") {
        connect(format!(
            "the container is not running; start it with `docker start {host}`"
        ))
    } else if said("Cannot connect to the Docker daemon") {
        connect(
            "the docker daemon does not answer; start it (`systemctl start docker`) or \
             check DOCKER_HOST"
                .into(),
        )
    } else if said("permission denied") && said("docker") {
        connect(
            "docker refused access to its daemon; run as a user in the `docker` group, or as root"
                .into(),
        )
    } else if said("exec: \"sh\"") {
        Some(Error::Bootstrap {
            host: host.to_owned(),
            message: "the container has no `sh` on its PATH; chopsticks needs a POSIX shell \
                      in the container to start its agent"
                .into(),
            stderr: failed.stderr.clone(),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::start::Refusal;

    fn said(line: &str) -> Option<Error> {
        let failed = Failed {
            refusal: Refusal::Agent("it exited before saying hello".into()),
            status: None,
            stderr: vec![line.to_owned()],
        };
        advice("box", "it exited before saying hello", &failed)
    }

    /// docker's own words, as docker 20-27 print them.
    #[test]
    fn each_docker_failure_says_what_to_do() {
        let text = |line: &str| said(line).map(|e| e.to_string()).unwrap_or_default();
        assert!(text("Error response from daemon: No such container: box").contains("docker ps"));
        assert!(
            text("Error response from daemon: Container 5bd7 is not running")
                .contains("docker start box")
        );
        assert!(text(
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. \
             Is the docker daemon running?"
        )
        .contains("systemctl start docker"));
        assert!(text(
            "permission denied while trying to connect to the Docker daemon socket at \
             unix:///var/run/docker.sock"
        )
        .contains("`docker` group"));
        let no_sh = said(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \
             \"sh\": executable file not found in $PATH: unknown",
        );
        assert!(matches!(no_sh, Some(Error::Bootstrap { .. })), "{no_sh:?}");
        assert!(no_sh.unwrap().to_string().contains("POSIX shell"));
        // The agent's own failures are left to the shared advice.
        assert!(said("./agent: version `GLIBC_2.34' not found").is_none());
    }
}
