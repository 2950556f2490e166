//! SSH tunnels: the system `ssh`, the bootstrap, and what their failures mean.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::bootstrap::remote_command;
use super::conn::{self, Conn, Failed, Launch};
use super::greet::{Refusal, Ship};
use super::image::Image;
use super::{nonce, refuse_recursion, refuse_without_entry, Tunnel};
use crate::error::{Error, Result};

/// Names the agent binary to ship to SSH hosts instead of this executable.
pub const ENV_AGENT_BINARY: &str = "CHOPSTICKS_AGENT_BINARY";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// How to reach one host over SSH; [`connect`](TunnelBuilder::connect) opens
/// the tunnel. Made by [`Tunnel::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use chopsticks::Tunnel;
///
/// # fn main() -> chopsticks::Result<()> {
/// let t = Tunnel::builder("troy")
///     .user("deploy")
///     .port(2222)
///     .ssh_option("ServerAliveInterval=5")
///     .connect_timeout(Duration::from_secs(10))
///     .sudo("root")
///     .connect()?;
/// println!("{}", t.call(chopsticks::facts::kernel, ())?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TunnelBuilder {
    host: String,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
    ssh_options: Vec<String>,
    connect_timeout: Duration,
    upload_timeout: Duration,
    call_timeout: Option<Duration>,
    control_persist: Option<Duration>,
    sudo: Option<String>,
    agent_binary: Option<PathBuf>,
    ssh_program: PathBuf,
}

impl Tunnel {
    /// Connects to `host` over SSH with the defaults of [`Tunnel::builder`].
    ///
    /// The system `ssh` is used, so `~/.ssh/config`, the ssh agent,
    /// ProxyJump and known_hosts work as they do on the command line.
    ///
    /// # Errors
    /// See [`TunnelBuilder::connect`].
    pub fn ssh(host: &str) -> Result<Tunnel> {
        Tunnel::builder(host).connect()
    }

    /// Starts configuring an SSH tunnel to `host` (a name `ssh` understands:
    /// an alias of `~/.ssh/config`, a host name or an address).
    pub fn builder(host: impl Into<String>) -> TunnelBuilder {
        TunnelBuilder {
            host: host.into(),
            user: None,
            port: None,
            identity_file: None,
            ssh_config: None,
            ssh_options: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            call_timeout: None,
            control_persist: None,
            sudo: None,
            agent_binary: None,
            ssh_program: "ssh".into(),
        }
    }
}

impl TunnelBuilder {
    /// Logs in as `user` (`ssh -l`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Connects to `port` (`ssh -p`).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Authenticates with this private key (`ssh -i`).
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_file = Some(path.into());
        self
    }

    /// Reads this ssh configuration file instead of `~/.ssh/config` (`ssh -F`).
    pub fn ssh_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh_config = Some(path.into());
        self
    }

    /// Adds an ssh option, `Key=value` (`ssh -o`). Options given here win
    /// over chopsticks' defaults (`ConnectTimeout` from
    /// [`connect_timeout`](Self::connect_timeout), `ServerAliveInterval=15`,
    /// `ServerAliveCountMax=3`), which in turn win over the configuration
    /// files. `BatchMode=yes` always applies: ssh must never prompt.
    pub fn ssh_option(mut self, option: impl Into<String>) -> Self {
        self.ssh_options.push(option.into());
        self
    }

    /// Bounds connecting, authenticating and starting the agent (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bounds uploading the agent when the host has no cached copy
    /// (default 300 s).
    pub fn upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// Bounds each call's wait on the tunnel (see [`Tunnel::set_call_timeout`]).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Shares one SSH connection per host between tunnels, and keeps it open
    /// for `idle` after the last one closes (`ControlMaster=auto`,
    /// `ControlPersist`), so a tool run again within that time skips the SSH
    /// handshake. The control sockets live in `$XDG_RUNTIME_DIR/chopsticks-ssh`
    /// (or `~/.ssh/chopsticks-ssh`), mode 700. Off by default: a persisting
    /// master outlives the program, and anyone who can use its socket (only
    /// you) can open sessions on the host without authenticating.
    pub fn control_persist(mut self, idle: Duration) -> Self {
        self.control_persist = Some(idle);
        self
    }

    /// Runs the agent as `user` through `sudo -n` (no password prompt: the
    /// login user needs `NOPASSWD` for this).
    pub fn sudo(mut self, user: impl Into<String>) -> Self {
        self.sudo = Some(user.into());
        self
    }

    /// Ships this executable as the agent instead of the running one, e.g. a
    /// `x86_64-unknown-linux-musl` build of the same program for hosts whose
    /// C library is older than this machine's. It must be built from the same
    /// source. The environment variable `CHOPSTICKS_AGENT_BINARY` sets it for
    /// every tunnel that does not set it here.
    pub fn agent_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.agent_binary = Some(path.into());
        self
    }

    /// Uses this program instead of `ssh` from `PATH`.
    pub fn ssh_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh_program = path.into();
        self
    }

    /// The host name this builder connects to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Connects, ships the agent if the host has no cached copy, and waits
    /// for its hello.
    ///
    /// # Errors
    /// - [`Error::Config`]: a host, user or option that could be mistaken
    ///   for something else (a leading `-`, whitespace, control characters);
    ///   nothing was run.
    /// - [`Error::Connect`]: ssh could not connect or authenticate (its own
    ///   message is included).
    /// - [`Error::Bootstrap`]: the host could not store or run the agent.
    /// - [`Error::Handshake`]: the agent did not start, with advice (a C
    ///   library too old for this build, sudo wanting a password ...).
    pub fn connect(&self) -> Result<Tunnel> {
        self.validate()?;
        let program = self.program()?;
        refuse_recursion(&self.host, &program)?;
        if self.agent_binary_path().is_none() {
            refuse_without_entry(&self.host)?;
        }
        let image = Image::of(&program).map_err(|e| Error::Config {
            host: self.host.clone(),
            message: format!("cannot read the agent binary {}: {e}", program.display()),
        })?;
        // A corrupt cached agent removes itself; the second try uploads.
        match self.start(&image) {
            Err(Error::Bootstrap { message, .. }) if message.contains(CORRUPT) => {
                self.start(&image)
            }
            other => other,
        }
    }

    fn start(&self, image: &Arc<Image>) -> Result<Tunnel> {
        let nonce = nonce();
        let mut command = Command::new(&self.ssh_program);
        command.args(self.ssh_args(remote_command(image, &nonce, self.sudo.as_deref())));
        let platform = self
            .agent_binary_path()
            .is_none()
            .then(|| (uname_s().to_owned(), std::env::consts::ARCH.to_owned()));
        let conn = Conn::start(Launch {
            host: self.host.clone(),
            program: self.ssh_program.display().to_string(),
            command,
            nonce,
            connect_timeout: self.connect_timeout,
            upload_timeout: self.upload_timeout,
            ship: Some(Ship {
                image: Arc::clone(image),
                platform,
            }),
            explain: explain_ssh,
        })?;
        conn.set_call_timeout(self.call_timeout);
        Ok(Tunnel { conn })
    }

    fn agent_binary_path(&self) -> Option<PathBuf> {
        self.agent_binary
            .clone()
            .or_else(|| std::env::var_os(ENV_AGENT_BINARY).map(PathBuf::from))
    }

    fn program(&self) -> Result<PathBuf> {
        match self.agent_binary_path() {
            Some(path) => Ok(path),
            None => std::env::current_exe().map_err(|e| Error::Config {
                host: self.host.clone(),
                message: format!("cannot find the running executable to ship: {e}"),
            }),
        }
    }

    /// The whole `ssh` argument vector.
    fn ssh_args(&self, remote: String) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["-T", "-e", "none", "-o", "BatchMode=yes"]
            .map(OsString::from)
            .to_vec();
        if let Some(config) = &self.ssh_config {
            args.extend(["-F".into(), config.into()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string().into()]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.into()]);
        }
        if let Some(key) = &self.identity_file {
            args.extend(["-i".into(), key.into()]);
        }
        // For each option ssh keeps the first value it sees: the user's
        // options go before chopsticks' defaults.
        for option in &self.ssh_options {
            args.extend(["-o".into(), option.into()]);
        }
        let secs = self.connect_timeout.as_secs().max(1);
        for option in [
            format!("ConnectTimeout={secs}"),
            "ServerAliveInterval=15".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
        ] {
            args.extend(["-o".into(), option.into()]);
        }
        if let (Some(idle), Some(dir)) = (self.control_persist, control_dir()) {
            for option in [
                "ControlMaster=auto".to_owned(),
                format!("ControlPath={}/%C", dir.display()),
                format!("ControlPersist={}", idle.as_secs().max(1)),
            ] {
                args.extend(["-o".into(), option.into()]);
            }
        }
        args.extend(["--".into(), self.host.clone().into(), remote.into()]);
        args
    }

    /// Refuses strings that ssh or the remote shell could take for options
    /// or syntax.
    fn validate(&self) -> Result<()> {
        let bad = |what: &str, value: &str, why: &str| Error::Config {
            host: self.host.clone(),
            message: format!("refusing {what} {value:?}: {why}"),
        };
        for (what, value) in [("host", Some(&self.host)), ("user", self.user.as_ref())] {
            let Some(value) = value else { continue };
            if value.is_empty() {
                return Err(bad(what, value, "it is empty"));
            }
            if value.starts_with('-') {
                return Err(bad(
                    what,
                    value,
                    "it starts with `-` and would be an ssh option",
                ));
            }
            if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(
                    what,
                    value,
                    "it contains whitespace or control characters",
                ));
            }
        }
        if let Some(user) = &self.sudo {
            let ok = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !ok {
                return Err(bad("sudo user", user, "expected a user name"));
            }
        }
        for option in &self.ssh_options {
            if option.starts_with('-') || option.chars().any(char::is_control) {
                return Err(bad(
                    "ssh option",
                    option,
                    "expected `Key=value` without control characters",
                ));
            }
        }
        Ok(())
    }
}

/// The directory of ssh control sockets: private to the user (mode 700).
/// `None` when it cannot be made safely; then no connection is shared.
fn control_dir() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh")))?;
    let mut dir = base.join("chopsticks-ssh");
    // A socket path is at most 107 bytes: the directory, "/", the 40-hex
    // `%C` and the 17 characters ssh appends to the master's temporary name.
    if dir.as_os_str().len() + 1 + 40 + 17 > 107 {
        // SAFETY: geteuid cannot fail.
        dir = PathBuf::from(format!("/tmp/chopsticks-ssh-{}", unsafe {
            libc::geteuid()
        }));
    }
    let _ = std::fs::create_dir_all(&base);
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let private = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
    private.then_some(dir)
}

/// The agent prints this when its cached copy fails its checksum.
const CORRUPT: &str = "is corrupt";

fn uname_s() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// Why an SSH agent did not start, with what to do about it.
fn explain_ssh(host: &str, failed: Failed) -> Error {
    let Failed {
        refusal,
        status,
        stderr,
    } = failed;
    let host = host.to_owned();
    let said = |needle: &str| stderr.iter().any(|line| line.contains(needle));
    let message = match refusal {
        Refusal::Script(message) => {
            return Error::Bootstrap {
                host,
                message,
                stderr,
            }
        }
        Refusal::Agent(message) => message,
        Refusal::Stale(message) => {
            return Error::Handshake {
                host,
                message,
                stderr,
            }
        }
    };
    let ssh_failed = status.is_some_and(|s| s.code() == Some(255));
    if ssh_failed || (status.is_none() && stderr.is_empty() && message.contains("no answer")) {
        let message = if ssh_failed {
            let advice = connect_advice(&stderr)
                .map(|advice| format!(": {advice}"))
                .unwrap_or_default();
            format!("ssh could not connect or log in{advice}")
        } else {
            format!("{message}: ssh did not connect, or the remote shell hangs")
        };
        return Error::Connect {
            host,
            message,
            stderr,
        };
    }
    let advice = if said("a password is required") || said("a terminal is required") {
        "; sudo wants a password: allow the login user to run the agent without one \
         (NOPASSWD in sudoers), or connect as the target user"
    } else if said("GLIBC_") || said("GLIBCXX_") {
        "; the host's C library is older than the one this program was built against: \
         build the agent with `--target x86_64-unknown-linux-musl` (static, runs on any \
         Linux) and set it with `agent_binary` or CHOPSTICKS_AGENT_BINARY"
    } else if said("Exec format error") || said("cannot execute binary file") {
        "; the host cannot run this executable (another architecture?): build the agent \
         for the host and set it with `agent_binary` or CHOPSTICKS_AGENT_BINARY"
    } else if said("not found") && said("sudo") {
        "; sudo is not installed on the host"
    } else {
        "; the agent is this program started again: its `main` must begin with \
         `chopsticks::agent::run_if_requested()` or carry `#[chopsticks::main]`"
    };
    let message = match status {
        Some(status) => format!("{message} ({}){advice}", conn::describe(status)),
        None => format!("{message}{advice}"),
    };
    Error::Handshake {
        host,
        message,
        stderr,
    }
}

/// What to do about a failed ssh connection, from what ssh said.
fn connect_advice(stderr: &[String]) -> Option<&'static str> {
    let said = |needle: &str| stderr.iter().any(|line| line.contains(needle));
    Some(if said("Could not resolve hostname") {
        "the host name does not resolve; check its spelling, DNS, or a HostName \
         in your ssh config"
    } else if said("Connection refused") {
        "nothing listens on that port; check that sshd runs there and the port"
    } else if said("timed out") || said("No route to host") || said("Network is unreachable") {
        "the host did not answer; check that it is up and reachable from here \
         (address, firewall, VPN), or raise the connect timeout"
    } else if said("REMOTE HOST IDENTIFICATION HAS CHANGED") || said("Offending") {
        "the host's key differs from the one in known_hosts; if the host was \
         reinstalled, remove the old key with `ssh-keygen -R <host>` and connect again"
    } else if said("Host key verification failed") {
        "the host's key is not in known_hosts and BatchMode cannot ask; connect once \
         with `ssh <host>` to accept it, or add it to known_hosts"
    } else if said("Permission denied") {
        "the host refused the login (BatchMode: no password prompts); check the user \
         and that one of your keys is in its authorized_keys, or load it into ssh-agent"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(b: &TunnelBuilder) -> Vec<String> {
        b.ssh_args("REMOTE".into())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn connect_errors_say_what_to_do() {
        let advice = |line: &str| connect_advice(&[line.to_owned()]).unwrap_or("");
        assert!(
            advice("ssh: Could not resolve hostname nope: Name or service not known")
                .contains("does not resolve")
        );
        assert!(
            advice("ssh: connect to host 10.0.0.1 port 22: Connection refused")
                .contains("sshd runs there")
        );
        assert!(
            advice("ssh: connect to host 10.0.0.1 port 22: Connection timed out")
                .contains("did not answer")
        );
        assert!(
            advice("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @")
                .contains("ssh-keygen -R")
        );
        assert!(advice("Offending ED25519 key in /root/.ssh/known_hosts:1").contains("-R"));
        assert!(advice("Host key verification failed.").contains("known_hosts"));
        assert!(advice("root@troy: Permission denied (publickey).").contains("authorized_keys"));
        assert_eq!(
            connect_advice(&["kex_exchange_identification: reset".into()]),
            None
        );
    }

    #[test]
    fn the_argument_vector_puts_user_options_first_and_the_host_after_dashdash() {
        let b = Tunnel::builder("troy")
            .user("deploy")
            .port(2222)
            .identity_file("/k")
            .ssh_option("ConnectTimeout=3");
        let args = args_of(&b);
        assert_eq!(&args[..5], ["-T", "-e", "none", "-o", "BatchMode=yes"]);
        let user_opt = args.iter().position(|a| a == "ConnectTimeout=3").unwrap();
        let default_opt = args.iter().position(|a| a == "ConnectTimeout=30").unwrap();
        assert!(user_opt < default_opt);
        assert_eq!(&args[args.len() - 3..], ["--", "troy", "REMOTE"]);
        assert!(args.windows(2).any(|w| w == ["-p", "2222"]));
        assert!(args.windows(2).any(|w| w == ["-l", "deploy"]));
    }

    #[test]
    fn option_looking_strings_are_refused() {
        for host in [
            "-oProxyCommand=touch /tmp/x",
            "a b",
            "",
            "web\n1",
            "web\u{7}",
        ] {
            let err = Tunnel::builder(host).validate().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{host:?}: {err}");
        }
        let err = Tunnel::builder("ok").user("-x").validate().unwrap_err();
        assert!(err.to_string().contains("ssh option"), "{err}");
        let err = Tunnel::builder("ok")
            .sudo("root; rm")
            .validate()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Tunnel::builder("ok")
            .ssh_option("-F/x")
            .validate()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        Tunnel::builder("user@web1.example.com")
            .user("deploy")
            .sudo("root")
            .ssh_option("ProxyJump=bastion")
            .validate()
            .unwrap();
    }
}
