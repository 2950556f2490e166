//! SSH tunnels: the system `ssh`, its options, and what its failures mean.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{link, masters, Way};
use crate::error::{Error, Result};
use crate::names;
use crate::tunnel::askpass::Askpass;
use crate::tunnel::builder::{Kind, TunnelBuilder};
use crate::tunnel::start::advice::NOT_AN_AGENT;
use crate::tunnel::start::bootstrap::login_command;
use crate::tunnel::start::Failed;
use crate::tunnel::Tunnel;

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
    /// an alias of `~/.ssh/config`, a host name or an address); the same as
    /// [`TunnelBuilder::ssh`].
    pub fn builder(host: impl Into<String>) -> TunnelBuilder {
        TunnelBuilder::ssh(host)
    }
}

/// The options of ssh tunnels only; on another kind of tunnel, connecting
/// fails with [`Error::Config`] naming the option.
impl TunnelBuilder {
    /// Connects to `port` (`ssh -p`).
    pub fn port(mut self, port: u16) -> Self {
        self.ssh.port = Some(port);
        self
    }

    /// Authenticates with this private key (`ssh -i`).
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh.identity_file = Some(path.into());
        self
    }

    /// Reads this ssh configuration file instead of `~/.ssh/config` (`ssh -F`).
    pub fn ssh_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh.ssh_config = Some(path.into());
        self
    }

    /// Adds an ssh option, `Key=value` (`ssh -o`). Options given here win
    /// over chopsticks' defaults (`ConnectTimeout` from
    /// [`connect_timeout`](Self::connect_timeout), `ServerAliveInterval=15`,
    /// `ServerAliveCountMax=3`), which in turn win over the configuration
    /// files. `BatchMode=yes` always applies unless a password source is
    /// given ([`password_source`](Self::password_source)): ssh must never
    /// prompt a person.
    pub fn ssh_option(mut self, option: impl Into<String>) -> Self {
        self.ssh.ssh_options.push(option.into());
        self
    }

    /// Shares one SSH connection per host between tunnels, and keeps it open
    /// for `idle` after the last one closes (`ControlMaster=auto`,
    /// `ControlPersist`), so a tool run again within that time skips the SSH
    /// handshake. The control sockets live in `$XDG_RUNTIME_DIR/chopsticks-ssh`
    /// (or `~/.ssh/chopsticks-ssh`), mode 700. Off by default: a persisting
    /// master outlives the program, and anyone who can use its socket (only
    /// you) can open sessions on the host without authenticating.
    ///
    /// Over a master, a tunnel starts no `ssh` at all: it asks the master
    /// for the session itself (OpenSSH's multiplexing protocol) and hands
    /// it its pipes, which spares each host an `ssh` process, most of what
    /// a rerun costs this machine. The first tunnel for a host learns where
    /// its master listens (`ssh -v -G`, beside the connection) and records
    /// it in that directory under the arguments and the contents of the ssh
    /// configuration files they depend on; editing one of those files makes
    /// the next tunnel learn again. It also learns the host's login shell:
    /// a POSIX one (bash, dash, ksh ...) then runs the bootstrap itself,
    /// without `exec /bin/sh -c`. Where the configuration may depend on
    /// more than files (`Match exec`, `localnetwork`, `${VAR}` ...),
    /// forwards the agent or X11, or another
    /// [`ssh_program`](Self::ssh_program) is used, every tunnel starts
    /// `ssh`. A master that does not answer within the connect timeout, or
    /// refuses the session, is passed by: the tunnel connects with an
    /// `ssh` of its own.
    pub fn control_persist(mut self, idle: Duration) -> Self {
        self.ssh.control_persist = Some(idle);
        self
    }

    /// Reaches the host through these jump hosts (`ssh -J`, the same as
    /// `ProxyJump` in an ssh config): `[user@]host[:port]`, several
    /// separated by commas, each an alias your ssh config may define. A
    /// connect error names the jump host, and says whether it could not be
    /// reached or could not reach the host.
    pub fn proxy_jump(mut self, jumps: impl Into<String>) -> Self {
        self.ssh.proxy_jump = Some(jumps.into());
        self
    }

    /// Reaches the host from `bastion`, a connected tunnel, instead of from
    /// here: the bastion's agent runs `ssh` to the host (the bastion's ssh,
    /// with its configuration, keys and known hosts) and relays the
    /// session over the bastion's connection. The tunnel is an ordinary
    /// one (calls, groups, files, deadlines); many share the bastion's one
    /// connection, and the bastion, not this machine, does their ssh
    /// handshakes. Through a bastion the agent sits one level deeper, so the
    /// nesting limit applies ([`max_depth`](Self::max_depth)).
    ///
    /// Options that name files here (`ssh_config`, `identity_file`), a
    /// password source and `control_persist` do not apply through a
    /// bastion, and are refused; `port`, `user`, `ssh_option` and
    /// `proxy_jump` go to the bastion's ssh, and `sudo` applies on the
    /// inner host. When the bastion sends the agent itself (it runs the
    /// same program), that upload counts against the connect timeout, not
    /// the upload timeout.
    pub fn via(mut self, bastion: &Tunnel) -> Self {
        self.ssh.via = Some(super::via::Via::of(bastion));
        self
    }

    /// Uses this program instead of `ssh` from `PATH`.
    pub fn ssh_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh.ssh_program = Some(path.into());
        self
    }
}

/// How an ssh tunnel runs the bootstrap `script`.
pub(super) fn way(builder: &TunnelBuilder, script: String) -> Result<Way> {
    if let Some(via) = &builder.ssh.via {
        return way_via(builder, via, script);
    }
    let program = builder
        .ssh
        .ssh_program
        .clone()
        .unwrap_or_else(|| "ssh".into());
    // The arguments but the remote command.
    let mut args = ssh_args(builder, String::new());
    args.pop();
    let shared = shared(builder, &program, &args);
    // A host that logs in with a POSIX shell runs the script itself, as
    // `sh` would; another (fish, csh), or one not known yet, runs `sh`.
    let sudo = builder.options.sudo();
    let noted = shared
        .as_ref()
        .and_then(|k| masters::posix_login(&k.record));
    let (remote, login) = match (&shared, noted, sudo) {
        (Some(key), Some(true), None) => (script, super::Login::Trusted(key.record.clone())),
        (Some(key), None, None) => (
            login_command(&script, sudo),
            super::Login::Learn(key.record.clone()),
        ),
        _ => (login_command(&script, sudo), super::Login::Known),
    };
    let askpass = match &builder.options.passwords {
        Some(source) => Some(askpass(builder, source)?),
        None => None,
    };
    // `ssh`, sharing the connection as the builder says, or (`direct`)
    // with a connection of its own.
    let command = |direct: bool| {
        let mut command = Command::new(&program);
        if direct {
            // ssh keeps an option's first value.
            command.args(["-o", "ControlPath=none"]);
        }
        command.args(ssh_args(builder, remote.clone()));
        if let Some(askpass) = &askpass {
            command.envs(askpass.env());
        }
        command
    };
    // The jump hosts, for a connect error: the builder's, or (read only
    // when connecting failed) those of the user's ssh config.
    let given = builder.ssh.proxy_jump.clone();
    let ssh = program.clone();
    // Over a master an earlier tunnel left, the session is opened there;
    // otherwise `ssh` starts, and the master it leaves is learned.
    let master = shared.as_ref().and_then(|k| masters::recall(&k.record));
    let (start, learning) = match (shared, master) {
        (Some(_), Some(master)) => (
            super::Start::Shared {
                socket: master.socket.clone(),
                command: remote.clone(),
                env: master.env(),
                fallback: Box::new(command(false)),
                direct: Box::new(command(true)),
            },
            None,
        ),
        (Some(key), None) => {
            let (ssh, args) = (program.clone(), args.clone());
            let learn = move || {
                let said = run_bounded(
                    Command::new(&ssh).args(["-v", "-G"]).args(&args),
                    LEARN_TIME,
                );
                if let Some((config, debug)) = said {
                    masters::remember(&key, &config, &debug);
                }
            };
            let learning = std::thread::Builder::new().spawn(learn).ok();
            (super::Start::Command(command(false)), learning)
        }
        (None, _) => (super::Start::Command(command(false)), None),
    };
    let near: link::Near = match builder.ssh.ssh_program.is_some() {
        // Another ssh program may not know `-G` (it could connect
        // instead): its hosts count as far.
        true => link::far(),
        false => {
            let (ssh, args) = (ssh.clone(), args.clone());
            let jumped = given.is_some();
            // Where ssh connects, as its configuration says (asked on an
            // upload only); through a jump host or a proxy command, far.
            std::sync::Arc::new(move || {
                let Some(config) = ssh_config_of(&ssh, &args) else {
                    return false;
                };
                let set = |key: &str| masters::setting(&config, key).is_some_and(|v| v != "none");
                let proxied = jumped || set("proxyjump") || set("proxycommand");
                !proxied && masters::setting(&config, "hostname").is_some_and(link::near)
            })
        }
    };
    let jumps = move || {
        given
            .clone()
            .or_else(|| configured(&ssh, &args, "proxyjump").filter(|j| j != "none"))
    };
    let asked = askpass.as_ref().map(Askpass::counter);
    Ok(Way {
        program: program.display().to_string(),
        start,
        learning,
        login,
        advice: Box::new(move |host, message, failed| {
            let said = Said {
                jumps: &jumps,
                asked: asked.as_deref(),
            };
            advice(host, message, failed, &said)
        }),
        fallback: NOT_AN_AGENT,
        askpass,
        near,
    })
}

/// How a tunnel through a bastion runs the bootstrap: the bastion's
/// `ssh`, started by its agent.
fn way_via(builder: &TunnelBuilder, via: &super::via::Via, script: String) -> Result<Way> {
    let refused = [
        ("ssh_config", builder.ssh.ssh_config.is_some()),
        ("identity_file", builder.ssh.identity_file.is_some()),
        ("control_persist", builder.ssh.control_persist.is_some()),
        ("ssh_program", builder.ssh.ssh_program.is_some()),
        ("password_source", builder.options.passwords.is_some()),
    ];
    if let Some((option, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(Error::Config {
            host: builder.host.clone(),
            message: format!(
                "`{option}` does not apply through a bastion ({}): the bastion's ssh uses \
                 its own configuration and keys",
                via.host()
            ),
        });
    }
    let remote = login_command(&script, builder.options.sudo());
    let argv: Vec<String> = std::iter::once("ssh".to_owned())
        .chain(
            ssh_args(builder, remote)
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    let bastion = via.host().to_owned();
    Ok(Way {
        program: format!("ssh on {bastion}"),
        start: super::Start::Relay {
            via: via.clone(),
            argv,
        },
        advice: Box::new(move |host, message, failed| {
            let none = || None;
            let said = Said {
                jumps: &none,
                asked: None,
            };
            advice(host, message, failed, &said).map(|e| match e {
                Error::Connect {
                    host,
                    message,
                    stderr,
                } => Error::Connect {
                    host,
                    message: format!("from {bastion}: {message}"),
                    stderr,
                },
                other => other,
            })
        }),
        fallback: NOT_AN_AGENT,
        askpass: None,
        // The bastion sends the agent: this link does not carry it.
        near: link::far(),
        learning: None,
        login: super::Login::Known,
    })
}

/// Answers ssh's password prompts for this connection from `source`.
fn askpass(builder: &TunnelBuilder, source: &crate::passwords::Source) -> Result<Askpass> {
    let config = |message: String| Error::Config {
        host: builder.host.clone(),
        message,
    };
    if !crate::agent::has_entry_point() {
        return Err(config(
            "a password source needs this program's agent entry point (`#[chopsticks::main]` \
             on `main`): ssh asks it for the password"
                .into(),
        ));
    }
    let exe = std::env::current_exe().map_err(|e| {
        config(format!(
            "cannot find the running executable for askpass: {e}"
        ))
    })?;
    Askpass::start(&builder.host, source.clone(), &exe)
        .map_err(|e| config(format!("cannot set up the askpass socket: {e}")))
}

/// What the advice for a failed ssh knows besides ssh's own words.
struct Said<'a> {
    /// The jump hosts, looked up when needed.
    jumps: &'a dyn Fn() -> Option<String>,
    /// How many password prompts were answered, with a password source.
    asked: Option<&'a AtomicUsize>,
}

/// The value of `key` (`proxyjump`, `hostname`) that ssh reads from its
/// configuration for the command.
fn configured(ssh: &Path, args: &[OsString], key: &str) -> Option<String> {
    masters::setting(&ssh_config_of(ssh, args)?, key).map(str::to_owned)
}

/// How long learning where a master listens may take (`ssh -v -G`, on a
/// thread of its own while the tunnel connects).
const LEARN_TIME: Duration = Duration::from_secs(5);

/// What ssh's configuration says for the command: `ssh -G ...` (which
/// connects nowhere), within a second.
fn ssh_config_of(ssh: &Path, args: &[OsString]) -> Option<String> {
    let mut command = Command::new(ssh);
    command.arg("-G").args(args);
    run_bounded(&mut command, Duration::from_secs(1)).map(|(out, _)| out)
}

/// The output and error output of `command`, which says little (what fits
/// a pipe), when it ends within `bound`.
fn run_bounded(command: &mut Command, bound: Duration) -> Option<(String, String)> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + bound;
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    child.stderr.take()?.read_to_string(&mut err).ok()?;
    Some((out, err))
}

/// The whole `ssh` argument vector.
fn ssh_args(builder: &TunnelBuilder, remote: String) -> Vec<OsString> {
    let (ssh, options) = (&builder.ssh, &builder.options);
    let mut args: Vec<OsString> = ["-T", "-e", "none", "-o"].map(OsString::from).to_vec();
    // Prompts only with a password source, and then once.
    match options.passwords {
        Some(_) => args.extend(["BatchMode=no", "-o", "NumberOfPasswordPrompts=1"].map(Into::into)),
        None => args.push("BatchMode=yes".into()),
    }
    if let Some(config) = &ssh.ssh_config {
        args.extend(["-F".into(), config.into()]);
    }
    if let Some(port) = ssh.port {
        args.extend(["-p".into(), port.to_string().into()]);
    }
    if let Some(user) = &options.user {
        args.extend(["-l".into(), user.into()]);
    }
    if let Some(key) = &ssh.identity_file {
        args.extend(["-i".into(), key.into()]);
    }
    if let Some(jumps) = &ssh.proxy_jump {
        args.extend(["-J".into(), jumps.into()]);
    }
    // For each option ssh keeps the first value it sees: the user's
    // options go before chopsticks' defaults.
    for option in &ssh.ssh_options {
        args.extend(["-o".into(), option.into()]);
    }
    let secs = options.connect_timeout.as_secs().max(1);
    for option in [
        format!("ConnectTimeout={secs}"),
        "ServerAliveInterval=15".to_owned(),
        "ServerAliveCountMax=3".to_owned(),
    ] {
        args.extend(["-o".into(), option.into()]);
    }
    if let (Some(idle), Some(dir)) = (ssh.control_persist, control_dir()) {
        for option in [
            "ControlMaster=auto".to_owned(),
            format!("ControlPath={}/%C", dir.display()),
            format!("ControlPersist={}", idle.as_secs().max(1)),
        ] {
            args.extend(["-o".into(), option.into()]);
        }
    }
    let destination = match &builder.kind {
        Kind::Ssh { destination } => destination,
        _ => &builder.host,
    };
    args.extend(["--".into(), destination.into(), remote.into()]);
    args
}

/// Where the master `control_persist` shares for this tunnel is recorded
/// (see [`masters`]); `None` without `control_persist`, with another ssh
/// program (it may speak another protocol), or when the configuration
/// cannot stand for the master.
fn shared(builder: &TunnelBuilder, program: &Path, args: &[OsString]) -> Option<masters::Key> {
    let ssh = &builder.ssh;
    if ssh.control_persist.is_none() || ssh.ssh_program.is_some() {
        return None;
    }
    masters::key(&control_dir()?, program, args)
}

/// Refuses ssh options that ssh could take for something else, and values
/// it hands a shell: jump hosts and the host names, users and jump hosts
/// given as `-o` options are checked as [`names`] checks them.
pub(super) fn validate(builder: &TunnelBuilder) -> Result<()> {
    let refuse = |message: String| Error::Config {
        host: crate::output::printable(&builder.host).into_owned(),
        message: format!("refusing {message}"),
    };
    if let Some(jumps) = &builder.ssh.proxy_jump {
        names::jump_hosts(jumps).map_err(refuse)?;
    }
    for option in &builder.ssh.ssh_options {
        let (key, value) = option
            .split_once(['=', ' '])
            .map_or((option.as_str(), ""), |(k, v)| {
                (k, v.trim_start_matches(['=', ' ']))
            });
        let key_ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric());
        if !key_ok || option.chars().any(char::is_control) {
            return Err(refuse(format!(
                "the ssh option {option:?}: expected `Key=value` without control characters"
            )));
        }
        let checked = match key.to_ascii_lowercase().as_str() {
            "hostname" => names::host(value),
            "user" => names::user(value),
            "proxyjump" if value != "none" => names::jump_hosts(value),
            _ => Ok(()),
        };
        checked.map_err(|e| refuse(format!("the ssh option {key}: {e}")))?;
    }
    Ok(())
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

/// What ssh's own failure means: ssh exits with 255 when it could not
/// connect or log in.
fn advice(host: &str, message: &str, failed: &Failed, known: &Said<'_>) -> Option<Error> {
    let ssh_failed = failed.status.is_some_and(|s| s.code() == Some(255));
    let silent_hang =
        failed.status.is_none() && failed.stderr.is_empty() && message.contains("no answer");
    if !ssh_failed && !silent_hang {
        return None;
    }
    let message = if ssh_failed {
        let said = |needle: &str| failed.stderr.iter().any(|l| l.contains(needle));
        let jumps = (known.jumps)();
        let asked = known.asked.map(|n| n.load(Ordering::SeqCst));
        let advice = match (&jumps, asked) {
            // The jump host connected, and the host could not be reached
            // from there.
            (Some(_), _) if said("stdio forwarding failed") || said("open failed") => Some(
                "the jump host could not reach the host: check the host's address and port \
                 as the jump host sees them, and that sshd runs there",
            ),
            (_, Some(1..)) if said("Permission denied") => Some(
                "the host refused the password the password source gave (ssh asks once, so a \
                 wrong password cannot lock the account)",
            ),
            (_, Some(0)) if said("Permission denied") => Some(
                "the host refused the login without asking for a password, or the password \
                 source gave none: check the user, and that the host takes passwords \
                 (PasswordAuthentication)",
            ),
            _ => connect_advice(&failed.stderr),
        };
        let through = jumps.map_or(String::new(), |j| format!(" through the jump host {j}"));
        let advice = advice.map(|a| format!(": {a}")).unwrap_or_default();
        format!("ssh could not connect or log in{through}{advice}")
    } else {
        format!("{message}: ssh did not connect, or the remote shell hangs")
    };
    Some(Error::Connect {
        host: host.to_owned(),
        message,
        stderr: failed.stderr.clone(),
    })
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
        ssh_args(b, "REMOTE".into())
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
        // A name of its own changes the label, not where ssh connects.
        let named = Tunnel::builder("troy").named("web1");
        assert_eq!(named.host(), "web1");
        let args = args_of(&named);
        assert_eq!(&args[args.len() - 3..], ["--", "troy", "REMOTE"]);
        let err = Tunnel::builder("troy").named("x;id").check().unwrap_err();
        assert!(
            err.to_string().contains("\"x;id\" is not a host name"),
            "{err}"
        );
    }

    impl TunnelBuilder {
        fn check(&self) -> Result<()> {
            super::super::validate(self)
        }
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
            let err = Tunnel::builder(host).check().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{host:?}: {err}");
        }
        let err = Tunnel::builder("ok").user("-x").check().unwrap_err();
        assert!(err.to_string().contains("taken for an option"), "{err}");
        let err = TunnelBuilder::docker("box").port(22).check().unwrap_err();
        assert!(err.to_string().contains("`port` is an ssh option"), "{err}");
        let err = Tunnel::builder("ok").sudo("root; rm").check().unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Tunnel::builder("ok")
            .ssh_option("-F/x")
            .check()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        Tunnel::builder("user@web1.example.com")
            .user("deploy")
            .sudo("root")
            .ssh_option("ProxyJump=bastion")
            .check()
            .unwrap();
    }

    /// What ssh substitutes into a `ProxyCommand` (`%h`, `%r`, and `-J`'s
    /// own) reaches `/bin/sh` here: none of it may carry shell words.
    #[test]
    fn values_ssh_hands_a_shell_are_refused() {
        for bad in [
            "x$(touch /tmp/pwned)",
            "x`id`",
            "x;id",
            "x'y",
            "x\"y",
            "x\\y",
            "x y",
            "x\ny",
        ] {
            let host = Tunnel::builder(bad).check().unwrap_err().to_string();
            assert!(host.contains("not a host name"), "{bad:?}: {host}");
            let at = Tunnel::builder(format!("{bad}@web1")).check().unwrap_err();
            assert!(at.to_string().contains("not a user name"), "{bad:?}: {at}");
            let user = Tunnel::builder("web1").user(bad).check().unwrap_err();
            assert!(
                user.to_string().contains("not a user name"),
                "{bad:?}: {user}"
            );
            let jump = Tunnel::builder("web1").proxy_jump(format!("ops@{bad}:22"));
            let jump = jump.check().unwrap_err().to_string();
            assert!(jump.contains("jump host"), "{bad:?}: {jump}");
            let address = Tunnel::builder("web1").ssh_option(format!("HostName={bad}"));
            let address = address.check().unwrap_err().to_string();
            assert!(address.contains("ssh option"), "{bad:?}: {address}");
            let docker = TunnelBuilder::docker(bad).check().unwrap_err().to_string();
            assert!(docker.contains("not a host name"), "{bad:?}: {docker}");
            let command = TunnelBuilder::command(bad, ["true"]).check().unwrap_err();
            assert!(
                command.to_string().contains("not a host name"),
                "{bad:?}: {command}"
            );
        }
        Tunnel::builder("[2001:db8::1]")
            .proxy_jump("ops@[2001:db8::2]:2222,gate")
            .ssh_option("HostName=fe80::1%eth0")
            .check()
            .unwrap();
    }

    #[test]
    fn jump_hosts_pass_as_dash_j_and_options_are_refused() {
        let b = Tunnel::builder("inner").proxy_jump("admin@bastion:2222,gate");
        let args = args_of(&b);
        let j = args.iter().position(|a| a == "-J").unwrap();
        assert_eq!(args[j + 1], "admin@bastion:2222,gate");
        assert!(j < args.iter().position(|a| a == "--").unwrap());
        for bad in ["", "-oProxyCommand=x", "a,-b", "a b", "a,,b", "a\nb"] {
            let err = Tunnel::builder("inner")
                .proxy_jump(bad)
                .check()
                .unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
        }
    }
}
