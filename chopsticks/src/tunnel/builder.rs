//! `TunnelBuilder`: how to reach one host, whatever the kind of tunnel,
//! with the options every kind shares. What is particular to a kind lives
//! in `kind/`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::arch::rust_arch;
use super::start::bootstrap::Sudo;
use crate::passwords::PasswordPrompt;

/// Names the agent binary to ship instead of this executable.
pub const ENV_AGENT_BINARY: &str = "CHOPSTICKS_AGENT_BINARY";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// How to reach one host; [`connect`](TunnelBuilder::connect) opens the
/// tunnel. Made by [`Tunnel::builder`](crate::Tunnel::builder) (ssh), [`TunnelBuilder::docker`],
/// [`TunnelBuilder::command`] or [`TunnelBuilder::local`]; the options
/// below the constructors apply to every kind, the ssh ones to ssh only.
///
/// ```no_run
/// use std::time::Duration;
/// use chopsticks::{Tunnel, TunnelBuilder};
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
/// let db = TunnelBuilder::docker("postgres-1").call_timeout(Duration::from_secs(60)).connect()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TunnelBuilder {
    pub(crate) host: String,
    pub(crate) kind: Kind,
    pub(crate) options: Options,
    pub(crate) ssh: SshOptions,
}

/// The kinds of tunnel.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// The system `ssh` to `destination` (the builder's host, unless
    /// [`named`](TunnelBuilder::named) otherwise).
    Ssh { destination: String },
    /// `docker exec -i CONTAINER` into a running container.
    Docker { container: String },
    /// Any command that gives a shell on its stdin and stdout.
    Command { argv: Vec<OsString> },
    /// This program started again as a subprocess.
    Local,
}

impl Kind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Ssh { .. } => "ssh",
            Kind::Docker { .. } => "docker",
            Kind::Command { .. } => "command",
            Kind::Local => "local",
        }
    }
}

/// What every kind of tunnel understands.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub connect_timeout: Duration,
    pub upload_timeout: Duration,
    pub call_timeout: Option<Duration>,
    /// Log in (ssh) or run (docker) as this user.
    pub user: Option<String>,
    pub sudo: Option<String>,
    /// Where ssh's and sudo's passwords come from, if anywhere.
    pub passwords: Option<crate::passwords::Source>,
    pub agent_binary: Option<PathBuf>,
    /// Agent binaries for hosts of other machines, by Rust's name of the
    /// architecture (`aarch64`).
    pub agent_binaries: BTreeMap<String, PathBuf>,
    /// `None`: the controller's `log::max_level()` when connecting.
    pub log_level: Option<log::LevelFilter>,
    /// Ship the executable with its debug sections.
    pub ship_debug_info: bool,
    /// The deepest an agent may sit; `None`: what this process was given.
    pub max_depth: Option<u32>,
    /// Calls the agent may run on threads of their own at once.
    pub max_call_threads: Option<usize>,
    /// Start the agent check-only.
    pub check_only: bool,
}

impl Options {
    /// The agent binary set here or by [`ENV_AGENT_BINARY`].
    pub(crate) fn agent_binary(&self) -> Option<PathBuf> {
        self.agent_binary
            .clone()
            .or_else(|| std::env::var_os(ENV_AGENT_BINARY).map(PathBuf::from))
    }

    /// How the agent runs as another user, if it does.
    pub(crate) fn sudo(&self) -> Option<Sudo<'_>> {
        self.sudo.as_deref().map(|user| Sudo {
            user,
            password: self.passwords.is_some(),
        })
    }

    /// The agent binaries by architecture: those set here, then those of
    /// `CHOPSTICKS_AGENT_BINARY_<ARCH>` ([`ENV_AGENT_BINARY`] with the
    /// architecture in capitals after `_`).
    pub(crate) fn agent_binaries(&self) -> BTreeMap<String, PathBuf> {
        let prefix = format!("{ENV_AGENT_BINARY}_");
        let mut all: BTreeMap<String, PathBuf> = std::env::vars_os()
            .filter_map(|(key, value)| {
                let arch = key.to_str()?.strip_prefix(&prefix)?.to_ascii_lowercase();
                Some((rust_arch(&arch)?.to_owned(), PathBuf::from(value)))
            })
            .collect();
        all.extend(self.agent_binaries.clone());
        all
    }

    /// The log level agents forward records up to, as its wire number.
    pub(crate) fn log_level(&self) -> u8 {
        self.log_level.unwrap_or_else(log::max_level) as u8
    }
}

/// What only ssh tunnels understand.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SshOptions {
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    pub ssh_options: Vec<String>,
    pub control_persist: Option<Duration>,
    pub ssh_program: Option<PathBuf>,
    pub proxy_jump: Option<String>,
    pub via: Option<super::kind::via::Via>,
}

impl SshOptions {
    /// The name of the first option set, for an error on another kind.
    pub(crate) fn first_set(&self) -> Option<&'static str> {
        let SshOptions {
            port,
            identity_file,
            ssh_config,
            ssh_options,
            control_persist,
            ssh_program,
            proxy_jump,
            via,
        } = self;
        [
            ("port", port.is_some()),
            ("identity_file", identity_file.is_some()),
            ("ssh_config", ssh_config.is_some()),
            ("ssh_option", !ssh_options.is_empty()),
            ("control_persist", control_persist.is_some()),
            ("ssh_program", ssh_program.is_some()),
            ("proxy_jump", proxy_jump.is_some()),
            ("via", via.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }
}

impl TunnelBuilder {
    fn of(host: String, kind: Kind) -> TunnelBuilder {
        TunnelBuilder {
            host,
            kind,
            options: Options {
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
                call_timeout: None,
                user: None,
                sudo: None,
                passwords: None,
                agent_binary: None,
                agent_binaries: BTreeMap::new(),
                log_level: None,
                ship_debug_info: false,
                max_depth: None,
                max_call_threads: None,
                check_only: false,
            },
            ssh: SshOptions::default(),
        }
    }

    /// An ssh tunnel to `host` (a name `ssh` understands: an alias of
    /// `~/.ssh/config`, a host name or an address); the same as
    /// [`Tunnel::builder`](crate::Tunnel::builder).
    pub fn ssh(host: impl Into<String>) -> TunnelBuilder {
        let host = host.into();
        TunnelBuilder::of(host.clone(), Kind::Ssh { destination: host })
    }

    /// A tunnel into the running container `container`, by `docker exec -i`:
    /// the agent is shipped and cached in the container as on an ssh host
    /// (no `docker cp`, no change to the image). The container's name is the
    /// host name results and errors carry. The container needs a POSIX `sh`.
    pub fn docker(container: impl Into<String>) -> TunnelBuilder {
        let container = container.into();
        TunnelBuilder::of(container.clone(), Kind::Docker { container })
    }

    /// A tunnel through any command that gives a shell on its stdin and
    /// stdout: `["kubectl", "exec", "-i", "pod", "--"]`, `["lxc", "exec",
    /// "box", "--"]`, `["ip", "netns", "exec", "ns1"]`, `["chroot", "/srv/root"]`,
    /// `["nsenter", "-t", "4242", "-a"]`. The bootstrap is appended as
    /// `sh -c '<script>'`; `host` is the name results and errors carry.
    pub fn command<I, S>(host: impl Into<String>, argv: I) -> TunnelBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let argv = argv.into_iter().map(Into::into).collect();
        TunnelBuilder::of(host.into(), Kind::Command { argv })
    }

    /// This program started again as a local subprocess (as
    /// [`Tunnel::local`](crate::Tunnel::local)), with the options of a builder.
    pub fn local() -> TunnelBuilder {
        TunnelBuilder::of(super::LOCALHOST.to_owned(), Kind::Local)
    }

    /// Bounds connecting, authenticating and starting the agent (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// Bounds uploading the agent when the host has no cached copy
    /// (default 300 s).
    pub fn upload_timeout(mut self, timeout: Duration) -> Self {
        self.options.upload_timeout = timeout;
        self
    }

    /// Bounds each call on the tunnel (see [`Tunnel::set_call_timeout`](crate::Tunnel::set_call_timeout)).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.options.call_timeout = Some(timeout);
        self
    }

    /// Logs in as `user` (`ssh -l`), or runs as `user` in the container
    /// (`docker exec -u`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.options.user = Some(user.into());
        self
    }

    /// Runs the agent as `user` through `sudo -n` (no password prompt: the
    /// login user needs `NOPASSWD` for this).
    pub fn sudo(mut self, user: impl Into<String>) -> Self {
        self.options.sudo = Some(user.into());
        self
    }

    /// Answers the passwords ssh and sudo ask for from `source`: called
    /// with the host and what is asked, it returns the password (or `None`
    /// to refuse). See [`passwords`](crate::passwords) for ready sources
    /// (the terminal, an environment variable). Without one, ssh never
    /// prompts (`BatchMode=yes`) and sudo must not need a password (`-n`).
    ///
    /// ssh gets the password through `SSH_ASKPASS`: this program, started
    /// again in a mode of its own, asks for it over a socket in a private
    /// directory (so the program needs an agent entry point, as for any
    /// tunnel). sudo gets it once over the tunnel's channel when it prints
    /// its prompt (`sudo -S`). It is in no argument vector, environment,
    /// log record or error; ssh asks once (`NumberOfPasswordPrompts=1`), and
    /// sudo is answered once, so a wrong password is a connect error, not a
    /// lockout.
    pub fn password_source(
        mut self,
        source: impl Fn(&PasswordPrompt<'_>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.options.passwords = Some(crate::passwords::Source(std::sync::Arc::new(source)));
        self
    }

    /// Ships this executable as the agent instead of the running one, e.g. a
    /// `x86_64-unknown-linux-musl` build of the same program for hosts whose
    /// C library is older than this machine's. It must be built from the same
    /// source. The environment variable `CHOPSTICKS_AGENT_BINARY` sets it for
    /// every tunnel that does not set it here.
    pub fn agent_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.agent_binary = Some(path.into());
        self
    }

    /// Ships `path` to hosts whose machine is `arch`, e.g. an
    /// `aarch64-unknown-linux-musl` build of the same program for ARM hosts
    /// managed from an x86_64 machine. `arch` is Rust's name
    /// (`std::env::consts::ARCH`: `aarch64`, `x86_64`, `arm`, `riscv64`
    /// ...) or what `uname -m` says (`arm64`, `armv7l`). The bootstrap picks
    /// by the host's `uname -m`, in the same round trip; hosts of other
    /// machines get [`agent_binary`](Self::agent_binary) or this program.
    /// The environment sets it too, for every tunnel that does not set that
    /// architecture here: `CHOPSTICKS_AGENT_BINARY_AARCH64=path` (the
    /// architecture in capitals).
    ///
    /// An unknown architecture is an [`Error::Config`](crate::Error::Config)
    /// when connecting.
    pub fn agent_binary_for(mut self, arch: &str, path: impl Into<PathBuf>) -> Self {
        let key = rust_arch(arch).map_or_else(|| format!("unknown:{arch}"), str::to_owned);
        self.options.agent_binaries.insert(key, path.into());
        self
    }

    /// Ships the agent binary as it is, with its debug sections (DWARF),
    /// for a debugger or symbolised backtraces on the host. By default they
    /// are left out of what is shipped: a debug build is about eight times
    /// smaller without them, and the agent never reads them (a remote
    /// panic's file and line are in its message). Local tunnels run the
    /// file itself either way.
    pub fn ship_debug_info(mut self, ship: bool) -> Self {
        self.options.ship_debug_info = ship;
        self
    }

    /// How deep agents may nest: an agent's `#[remote]` functions may open
    /// tunnels, whose agents may open tunnels ... up to `depth` agents
    /// deep (default [`DEFAULT_MAX_DEPTH`](crate::agent::DEFAULT_MAX_DEPTH),
    /// 2, or `CHOPSTICKS_MAX_DEPTH`; the limit is passed on to the agent).
    /// A tunnel that would start an agent deeper fails with
    /// [`Error::Config`](crate::Error::Config), so a function that opens a
    /// tunnel to its own host cannot fork without end.
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.options.max_depth = Some(depth);
        self
    }

    /// How many calls the agent runs on threads of their own at once
    /// (default [`DEFAULT_MAX_CALL_THREADS`](crate::agent::DEFAULT_MAX_CALL_THREADS),
    /// 1024). A call that runs longer than about a millisecond gets a
    /// thread, so the requests behind it do not wait; past this many, a
    /// slow call keeps the agent's reader and the requests behind it wait
    /// for a call to end (unless calls with streams run, which always get
    /// their frames).
    pub fn max_call_threads(mut self, threads: usize) -> Self {
        self.options.max_call_threads = Some(threads.max(1));
        self
    }

    /// Makes the agent change nothing (default `false`): every operation
    /// of [`ops`](crate::ops) runs in [`Mode::Check`](crate::ops::Mode::Check)
    /// on it whatever mode it is given (handlers are not recorded either),
    /// [`put`](crate::Tunnel::put) and the operations that send files
    /// are refused or checked only, and agents its functions start are
    /// check-only too. A dry run that holds even when the code calling
    /// the operations passes [`Mode::Apply`](crate::ops::Mode::Apply): the kit's
    /// `--apply-plan` checks the hosts against the plan on such tunnels.
    /// What check mode runs runs here too: commands declared read-only
    /// ([`ChangedWhen::Never`](crate::ops::ChangedWhen::Never)) and
    /// command guards. Your own `#[remote]` functions are yours: one that
    /// writes without an operation still writes (ask
    /// [`agent::check_only`](crate::agent::check_only) in it).
    pub fn check_only(mut self, check_only: bool) -> Self {
        self.options.check_only = check_only;
        self
    }

    /// Forwards the agent's `log` records up to `level` (default: this
    /// program's `log::max_level()` when connecting).
    pub fn log_level(mut self, level: log::LevelFilter) -> Self {
        self.options.log_level = Some(level);
        self
    }

    /// Names the tunnel `name` where it would carry the ssh destination,
    /// the container, `"localhost"` or the command's host: in results
    /// ([`Group`](crate::Group)'s keys), errors and logs. What it connects
    /// to does not change. For an inventory's host reached some other way
    /// than by its name (`ansible_host`, `ansible_connection=docker`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.host = name.into();
        self
    }

    /// The tunnel's name: the host results and errors carry (the ssh
    /// destination, the container, `"localhost"`, or as
    /// [`named`](Self::named)).
    pub fn host(&self) -> &str {
        &self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder's map wins over the environment's, and both take `uname
    /// -m` names. (RISCV64: no other test reads that variable.)
    #[test]
    fn agent_binaries_come_from_the_builder_and_the_environment() {
        std::env::set_var("CHOPSTICKS_AGENT_BINARY_RISCV64", "/env/riscv");
        std::env::set_var("CHOPSTICKS_AGENT_BINARY_PPC64LE", "/env/power");
        let b = TunnelBuilder::ssh("h")
            .agent_binary_for("arm64", "/built/arm")
            .agent_binary_for("riscv64", "/built/riscv");
        let all = b.options.agent_binaries();
        std::env::remove_var("CHOPSTICKS_AGENT_BINARY_RISCV64");
        std::env::remove_var("CHOPSTICKS_AGENT_BINARY_PPC64LE");
        let all: Vec<(&str, &str)> = all
            .iter()
            .map(|(arch, path)| (arch.as_str(), path.to_str().unwrap()))
            .collect();
        assert_eq!(
            all,
            [
                ("aarch64", "/built/arm"),
                ("powerpc64", "/env/power"),
                ("riscv64", "/built/riscv"),
            ]
        );
    }
}
