//! [`Fleet`]: the flags every ops tool takes, and what they select.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chopsticks::ops::Mode;
use chopsticks::{Group, Tunnel, TunnelBuilder};
use clap::builder::TypedValueParser as _;
use clap::ArgAction;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use chopsticks::Color;

use crate::inventory::{Connection, Inventory, Settings, LOCALHOST_NAMES};
use crate::journal::{self, Journal};
use crate::printer::Printer;
use crate::{hosts, pattern, CliError, ExitCode};

/// The `-H` name of this machine (so is localhost, when no inventory
/// defines it).
const LOCAL: &str = "local";

/// Text that reads as a number, a boolean or null (`5432`, `1.5`, `true`,
/// `False`, `None`) as that, a quoted word as the word, the rest as text:
/// `vars_as`'s second, lenient reading of values that came as text.
fn loose_scalar(text: &str) -> Value {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Value::from(n);
    }
    if let Some(f) = t
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && t.contains('.'))
    {
        return Value::from(f);
    }
    match t {
        "True" | "true" => return Value::Bool(true),
        "False" | "false" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return Value::String(inner.to_owned());
        }
    }
    Value::String(t.to_owned())
}

/// Ansible's host list, `-i web1,10.0.0.7:2222,` (a trailing comma
/// makes one host a list): hosts with their ports, in no group.
fn host_list(inventory: &mut Inventory, list: &str) -> Result<(), CliError> {
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, port) = hosts::address_and_port(item);
        crate::inventory::check_host(name)
            .map_err(|e| CliError::Hosts(format!("-i {list}: {e}")))?;
        inventory.add_host("ungrouped", name, port);
    }
    Ok(())
}

/// `-H`'s long help: the host syntax, as `--help` shows it.
const HOSTS_HELP: &str = "\
Hosts to work on, added to the inventory's (-i); repeatable.
  web1,db1              a comma list; a name is reached with the system ssh
                        (~/.ssh/config, -F, -u, --port apply)
  web[01:20].example    a range: web01 ... web20 (the width is kept);
                        also [a:f] and a step, [0:10:5]
  docker:NAME           the running container NAME, through docker exec
  local                 this machine, without ssh (so is localhost, unless
                        the inventory defines it)
To narrow a selection use -l PATTERN; -l @FILE takes the hosts listed in
FILE, such as the retry file a run writes its failed hosts to.";

/// How many hosts a batch of a rolling run has: a number, or a share of
/// the selection (`25%`, at least one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// This many hosts a batch.
    Hosts(usize),
    /// This percentage of the selected hosts a batch.
    Percent(u8),
}

impl std::str::FromStr for Serial {
    type Err = String;

    fn from_str(s: &str) -> Result<Serial, String> {
        let bad = || format!("`{s}`: a batch size is a number of hosts (2) or a percentage (25%)");
        match s.strip_suffix('%') {
            Some(p) => match p.parse::<u8>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Serial::Percent(p)),
                _ => Err(bad()),
            },
            None => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Serial::Hosts(n)),
                _ => Err(bad()),
            },
        }
    }
}

/// `30s`, `5m`, `1h`, `250ms`, or a plain number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}`: a duration is a number with ms, s, m or h (30s, 5m)");
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// The flags of an ops tool, to flatten into its own clap struct:
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     fleet: chopsticks_cli::Fleet,
///     /// What the tool itself takes.
///     #[arg(long, default_value = "hello")]
///     greeting: String,
/// }
///
/// let cli = Cli::parse_from(["tool", "-H", "web[1:2],db1", "-l", "web*", "--check"]);
/// let selection = cli.fleet.selection().unwrap();
/// assert_eq!(selection.names(), ["web1", "web2"]);
/// assert_eq!(cli.fleet.mode(), chopsticks::ops::Mode::Check);
/// ```
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Fleet {
    /// Hosts: `web1,web[01:20].example`, `docker:NAME`, `local` (`--help`
    /// shows the syntax).
    #[arg(short = 'H', long = "hosts", value_name = "HOSTS", action = ArgAction::Append,
          help = "Hosts: web1,web[01:20].example, docker:NAME, local (--help: the syntax)",
          long_help = HOSTS_HELP)]
    pub hosts: Vec<String>,
    /// An inventory: chopsticks TOML (.toml), Ansible YAML (.yml) or INI, an inventory script, ansible-inventory --list JSON, or a host list (web1,web2,)
    #[arg(short = 'i', long = "inventory", value_name = "FILE", action = ArgAction::Append)]
    pub inventory: Vec<PathBuf>,
    /// Only the hosts an Ansible pattern selects: web:&prod:!db1, web*, ~regex, @FILE
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Log in as USER (an inventory's own user wins)
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Connect to this ssh port (an inventory's own port wins)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Run as USER through sudo (root when no USER is given: --sudo or --sudo=USER)
    #[arg(long, value_name = "USER", num_args = 0..=1, require_equals = true,
          default_missing_value = "root")]
    pub sudo: Option<String>,
    /// Read this ssh_config instead of ~/.ssh/config
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Log in with this ssh key (an inventory's own key wins)
    #[arg(long = "private-key", value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Ask once, on the terminal, for the password ssh and sudo want
    #[arg(short = 'k', long = "ask-pass")]
    pub ask_pass: bool,
    /// Reach the hosts through these jump hosts (ssh -J: USER@HOST:PORT, several separated by commas)
    #[arg(short = 'J', long = "jump", value_name = "HOSTS")]
    pub jump: Option<String>,
    /// Connect to at most N hosts at once
    #[arg(short = 'f', long, value_name = "N", default_value_t = chopsticks::DEFAULT_FORKS)]
    pub forks: usize,
    /// Say what would change, change nothing
    #[arg(long)]
    pub check: bool,
    /// Show content changes as unified diffs
    #[arg(long)]
    pub diff: bool,
    /// Give each host's call at most this long (30s, 5m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Give each host this long to connect
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub connect_timeout: Duration,
    /// Keep ssh connections open this long after the run, so a rerun skips the handshake
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, num_args = 0..=1,
          require_equals = true, default_missing_value = "10m")]
    pub control_persist: Option<Duration>,
    /// Show the hosts' stderr (-v) and their debug log records (-vv)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Show only failures and the recap
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colours (and the progress line): auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto",
          value_parser = clap::builder::PossibleValuesParser::new(["auto", "always", "never"])
              .try_map(|s| s.parse::<Color>()))]
    pub color: Color,
    /// One JSON object per host per step on stdout, for scripts
    #[arg(long)]
    pub json: bool,
    /// Run in batches of N hosts, or N% of them, one batch after another
    #[arg(long, value_name = "N|N%")]
    pub serial: Option<Serial>,
    /// Stop before the next batch when more than this percentage of a batch failed
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_fail_percentage: Option<u8>,
    /// Write the failed hosts here (default: ~/.local/state/chopsticks/TOOL.retry)
    #[arg(long, value_name = "FILE")]
    pub retry_file: Option<PathBuf>,
    /// Keep no record of this run in the journal (also: CHOPSTICKS_NO_JOURNAL=1)
    #[arg(long)]
    pub no_journal: bool,
    /// Keep the run journal in DIR (default: ~/.local/state/chopsticks/TOOL)
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// List the recent runs from the journal, or what changed on HOST (with --diff, the diffs; with --json, the records); runs nothing
    #[arg(long, value_name = "HOST", num_args = 0..=1, default_missing_value = "")]
    pub history: Option<String>,
    /// Write the run as JUnit XML to FILE (a test case per host and step), for CI
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// After the recap, list the slowest steps and how long they took on their hosts
    #[arg(long)]
    pub profile: bool,
    /// With --check: write each host's planned changes to FILE (JSON, for review), to apply later with --apply-plan FILE
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<PathBuf>,
    /// Apply the reviewed plan FILE of --check --save-plan: each host checks again first, and a host whose changes differ from the plan is refused
    #[arg(long, value_name = "FILE")]
    pub apply_plan: Option<PathBuf>,
    /// Set while `--apply-plan`'s check pass runs: [`mode`](Fleet::mode)
    /// is then [`Mode::Check`].
    #[arg(skip)]
    verifying: Arc<AtomicBool>,
    /// Whether [`mode`](Fleet::mode) was read: `--apply-plan` refuses a
    /// tool that read it before [`run`](Fleet::run).
    #[arg(skip)]
    mode_read: Arc<AtomicBool>,
}

/// One selected host: its name, how to reach it, its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// Its name, as the inventory and the output call it.
    pub name: String,
    /// How to reach it.
    pub settings: Settings,
    /// Its variables, merged from its groups and its own.
    pub vars: Map<String, Value>,
}

/// The hosts a run works on, in inventory order, with their variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    hosts: Vec<Selected>,
}

impl Selection {
    /// The hosts' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// Every selected host.
    pub fn hosts(&self) -> &[Selected] {
        &self.hosts
    }

    /// A host's variables as JSON values.
    pub fn vars(&self, host: &str) -> Option<&Map<String, Value>> {
        self.hosts.iter().find(|h| h.name == host).map(|h| &h.vars)
    }

    /// A host's variables as your own type (`serde`): what to pass to its
    /// `#[remote]` functions.
    ///
    /// Values keep the types the inventory gave them, as Ansible reads
    /// them (in INI, `true` is text: Python's literal is `True`); where
    /// your type asks for a number or a boolean and the strict reading
    /// fails, text that reads as one (`5432`, `true`) is taken as one.
    ///
    /// # Errors
    /// [`CliError::Vars`] naming the host and what does not fit, or that
    /// the host is not one of the selection.
    pub fn vars_as<T: DeserializeOwned>(&self, host: &str) -> Result<T, CliError> {
        let vars = self.vars(host).cloned().ok_or_else(|| CliError::Vars {
            host: host.to_owned(),
            message: "it is not a host of this selection".into(),
        })?;
        let strict = serde_json::from_value(Value::Object(vars.clone()));
        strict
            .or_else(|strict| {
                let read = vars
                    .into_iter()
                    .map(|(k, v)| match v {
                        Value::String(text) => (k, loose_scalar(&text)),
                        other => (k, other),
                    })
                    .collect();
                serde_json::from_value(Value::Object(read)).map_err(|_| strict)
            })
            .map_err(|e| CliError::Vars {
                host: host.to_owned(),
                message: e.to_string(),
            })
    }
}

impl Fleet {
    /// Whether no host was given at all (no `-H`, no `-i`): a tool may then
    /// work on this machine, as `Tunnel::local()`.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.inventory.is_empty()
    }

    /// [`Mode::Check`] with `--check`, else [`Mode::Apply`]; with
    /// `--apply-plan`, [`Mode::Check`] while [`run`](Fleet::run) checks
    /// the hosts against the plan, then [`Mode::Apply`]. Call it inside
    /// the steps given to [`run`](Fleet::run), not once before it: a mode
    /// read before would apply during the check pass, so `--apply-plan`
    /// refuses a tool that read it before `run` (exit 1).
    pub fn mode(&self) -> Mode {
        self.mode_read.store(true, Ordering::SeqCst);
        match self.check || self.verifying.load(Ordering::SeqCst) {
            true => Mode::Check,
            false => Mode::Apply,
        }
    }

    /// The inventories given with `-i`, merged, and the hosts of `-H`.
    /// Installs the kit's Ctrl-C handler first (see
    /// [`printer`](Fleet::printer)): Ctrl-C stops an inventory script too.
    ///
    /// # Errors
    /// An inventory that cannot be read (file and line), a bad host range.
    pub fn inventory(&self) -> Result<Inventory, CliError> {
        crate::interrupt::install();
        let mut inventory = Inventory::new();
        let mut sources = Vec::new();
        for path in &self.inventory {
            match path.to_str().filter(|p| p.contains(',') && !path.exists()) {
                Some(list) => host_list(&mut inventory, list)?,
                None => {
                    inventory.read_source(path)?;
                    sources.push(path);
                }
            }
        }
        // A source's group_vars/ are for its groups wherever they are defined.
        for path in sources {
            inventory.read_vars_files(path)?;
        }
        for list in &self.hosts {
            for name in hosts::expand_list(list).map_err(CliError::Hosts)? {
                crate::inventory::check_host(&name)
                    .map_err(|e| CliError::Hosts(format!("-H {list}: {e}")))?;
                // `local`, and localhost when no inventory defines it, are
                // this machine: a local tunnel, as `ansible_connection=local`.
                let here = name == LOCAL || LOCALHOST_NAMES.contains(&name.as_str());
                let implicit = here && inventory.host(&name).is_none();
                let entry = inventory.host_mut(&name);
                if implicit {
                    entry.settings.connection = Some(Connection::Local);
                }
            }
        }
        self.check_flags()?;
        Ok(inventory)
    }

    /// Refuses flag values ssh or sudo could misread (see
    /// [`chopsticks::names`]), before any host is reached.
    fn check_flags(&self) -> Result<(), CliError> {
        let flag = |name: &str, checked: Result<(), String>| {
            checked.map_err(|e| CliError::Flag(format!("{name}: {e}")))
        };
        if let Some(jumps) = &self.jump {
            flag("-J", chopsticks::names::jump_hosts(jumps))?;
        }
        if let Some(user) = &self.user {
            flag("-u", chopsticks::names::user(user))?;
        }
        if let Some(sudo) = &self.sudo {
            flag("--sudo", chopsticks::names::user(sudo))?;
        }
        Ok(())
    }

    /// The hosts to work on: the inventory's, narrowed by `--limit`.
    ///
    /// # Errors
    /// As [`inventory`](Fleet::inventory); a pattern that matches nothing;
    /// an empty selection.
    pub fn selection(&self) -> Result<Selection, CliError> {
        if self.is_empty() {
            return Err(CliError::NoHosts);
        }
        let inventory = self.inventory()?;
        let names = match &self.limit {
            Some(limit) => pattern::limit(&inventory, limit).map_err(CliError::Pattern)?,
            None => inventory.group_hosts("all"),
        };
        if names.is_empty() {
            return Err(CliError::Empty(self.limit.clone().unwrap_or_default()));
        }
        if names.len() > hosts::MAX_HOSTS {
            return Err(CliError::Bound(format!(
                "the selection has {} hosts, more than the {} one run takes: narrow it with \
                 --limit, or run in parts",
                names.len(),
                hosts::MAX_HOSTS
            )));
        }
        let resolved = inventory.resolve_all(&names)?;
        let hosts = names
            .into_iter()
            .zip(resolved)
            .map(|(name, (settings, vars))| Selected {
                name: name.to_owned(),
                settings,
                vars,
            })
            .collect();
        Ok(Selection { hosts })
    }

    /// The selected hosts as a group, each configured from the flags and
    /// the inventory.
    ///
    /// # Errors
    /// As [`selection`](Fleet::selection).
    pub fn group(&self) -> Result<Group, CliError> {
        Ok(self.group_of(&self.selection()?))
    }

    /// A group of these hosts, configured from the flags.
    pub fn group_of(&self, selection: &Selection) -> Group {
        self.group_for(selection, false)
    }

    /// As [`group_of`](Fleet::group_of), with check-only agents
    /// ([`TunnelBuilder::check_only`]) when `check_only`.
    fn group_for(&self, selection: &Selection, check_only: bool) -> Group {
        let builders = selection
            .hosts
            .iter()
            .map(|h| self.builder(h).check_only(check_only));
        let group = Group::new(builders)
            .forks(self.forks)
            .progress(!self.json && !self.quiet);
        match self.timeout {
            Some(timeout) => group.call_timeout(timeout),
            None => group,
        }
    }

    /// How to reach one host, named by its inventory name: `docker:NAME`
    /// goes into a container, as does a host whose `ansible_connection` is
    /// docker (its address, or else its name, names the container); a
    /// `local` one runs here (through sudo when it becomes another user);
    /// any other through ssh. The inventory's settings win over the flags.
    fn builder(&self, host: &Selected) -> TunnelBuilder {
        let s = &host.settings;
        let container = match (host.name.strip_prefix("docker:"), s.connection) {
            (Some(container), _) => Some(container),
            (None, Some(Connection::Docker)) => Some(s.address.as_deref().unwrap_or(&host.name)),
            (None, _) => None,
        };
        let sudo = s.sudo.as_ref().or(self.sudo.as_ref());
        let user = s.user.as_ref().or(self.user.as_ref());
        let mut b = match (container, s.connection) {
            (Some(container), _) => {
                let b = TunnelBuilder::docker(container);
                match user {
                    Some(user) => b.user(user),
                    None => b,
                }
            }
            // As Ansible's local connection, the login user does not apply;
            // sudo does, through the bootstrap a command tunnel runs.
            (None, Some(Connection::Local)) => match sudo {
                Some(_) => TunnelBuilder::command(&host.name, ["env"]),
                None => TunnelBuilder::local(),
            },
            (None, _) => {
                let mut b = Tunnel::builder(&host.name);
                if let Some(config) = &self.ssh_config {
                    b = b.ssh_config(config);
                }
                if let Some(address) = &s.address {
                    b = b.ssh_option(format!("HostName={address}"));
                }
                if let Some(port) = s.port.or(self.port) {
                    b = b.port(port);
                }
                if let Some(key) = s.identity_file.as_ref().or(self.private_key.as_ref()) {
                    b = b.identity_file(key);
                }
                if let Some(idle) = self.control_persist {
                    b = b.control_persist(idle);
                }
                if let Some(jumps) = &self.jump {
                    b = b.proxy_jump(jumps);
                }
                match user {
                    Some(user) => b.user(user),
                    None => b,
                }
            }
        };
        b = b.named(&host.name).connect_timeout(self.connect_timeout);
        if let Some(sudo) = sudo {
            b = b.sudo(sudo);
        }
        if self.ask_pass {
            let source = Arc::clone(terminal_passwords());
            b = b.password_source(move |prompt| source(prompt));
        }
        b
    }

    /// The group cut into the batches of `--serial` (one batch without it).
    pub fn batches(&self, group: &Group) -> Vec<Group> {
        let size = match self.serial {
            None => group.len(),
            Some(Serial::Hosts(n)) => n,
            Some(Serial::Percent(p)) => (group.len() * usize::from(p)).div_ceil(100),
        };
        group.batches(size.max(1))
    }

    /// The printer of a run with these flags: lines or JSON, a recap, the
    /// exit code. Also installs the Ctrl-C handler (the first Ctrl-C,
    /// SIGTERM or SIGHUP stops the run and its hosts' work, see
    /// [`ExitCode::Interrupted`]; a second quits at once, unjournaled; a
    /// run not stopped a minute after the first quits too) and applies, for the whole program, `--color` (the
    /// hosts' `[host]` prefixes and the progress line too), `-q` and
    /// `--json` (no progress line), and `-v` (the hosts' stderr, shown
    /// only with it, and log records: a logger on stderr at info, debug
    /// with `-vv`, when the tool has none); call it before the first call
    /// to a host.
    pub fn printer(&self) -> Printer {
        crate::interrupt::install();
        chopsticks::set_color(self.color);
        chopsticks::show_progress(!self.quiet && !self.json);
        chopsticks::show_remote_stderr(self.verbose > 0);
        crate::logger::install(self.verbose);
        let journal = match self.no_journal || journal::off_by_env() {
            true => None,
            false => self.journal_dir().map(Journal::new),
        };
        Printer::new(self.json, self.quiet, self.diff, self.retry_file.clone())
            .record(journal, self.junit.clone(), self.profile)
            .check(self.check)
            .keep_plan(self.save_plan.is_some() || self.apply_plan.is_some())
    }

    /// The run journal's directory: `--journal DIR`, or the tool's under
    /// `$XDG_STATE_HOME/chopsticks` (see [`journal`](crate::journal)).
    pub fn journal_dir(&self) -> Option<PathBuf> {
        self.journal
            .clone()
            .or_else(|| Journal::default_dir(&crate::printer::tool_name()?))
    }

    /// `--history [HOST]`: prints the journal's recent runs, or what
    /// changed on HOST (diffs with `--diff`), newest first; with `--json`
    /// the runs' records as the journal keeps them, one a line. 1 when
    /// the journal cannot be read.
    pub fn history(&self, host: &str) -> ExitCode {
        let Some(dir) = self.journal_dir() else {
            eprintln!("error: no journal: HOME is not set (give --journal DIR)");
            return ExitCode::Usage;
        };
        let journal = Journal::new(dir);
        let host = Some(host).filter(|h| !h.is_empty());
        let text = match self.json {
            true => journal
                .runs(host, crate::history::HISTORY_RUNS)
                .map(|runs| runs.iter().map(json_line).collect()),
            false => crate::history::show(&journal, host, self.diff),
        };
        match text {
            Ok(text) => {
                // A closed pipe (`| head`) is no error.
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
                ExitCode::Ok
            }
            Err(e) => {
                eprintln!("error: cannot read the journal: {e}");
                ExitCode::Usage
            }
        }
    }

    /// Runs `steps` over the selected hosts, batch by batch with
    /// `--serial`. Each batch's hosts connect first, in parallel (at most
    /// `--forks` at once): a host that cannot be reached is reported once
    /// (`unreachable`, at step `(connect)`), counted in the recap and
    /// written to the retry file, and `steps` get only the hosts that
    /// connected (not called when none did). It stops before the next
    /// batch when more than
    /// `--max-fail-percentage` of one failed; then prints the recap, writes
    /// the failed hosts to the retry file, and returns the exit code
    /// ([`ExitCode`]): 0 all good, 2 some host failed, 4 some host
    /// unreachable, 1 when the inventory or the selection is bad (said on
    /// stderr). With `--history` it only shows the journal
    /// ([`history`](Fleet::history)).
    ///
    /// With `--check --save-plan FILE` it writes the hosts' planned
    /// changes to FILE ([`plan`](crate::plan)); with `--apply-plan FILE`
    /// it runs `steps` first in [`Mode::Check`] (see [`mode`](Fleet::mode))
    /// on check-only tunnels ([`TunnelBuilder::check_only`]), silently, to
    /// compare each host's steps with the plan's (again on the hosts left,
    /// when some were refused: see [`MAX_CHECK_PASSES`]), then in
    /// [`Mode::Apply`] on the hosts that match. A host that differs, is
    /// missing from the plan or failed in it is refused (exit 2; one
    /// unreachable: 4) before anything is written on it; an applied step
    /// that differs from the plan is an error on its host. A plan of
    /// another build of the tool, or whose content digests were made with
    /// another key ([`DigestKey`](crate::plan::DigestKey)), is refused (exit 1).
    pub fn run(&self, mut steps: impl FnMut(&Group, &Selection, &mut Printer)) -> ExitCode {
        if let Some(host) = &self.history {
            return self.history(host);
        }
        if let Err(e) = self.check_plan_flags() {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
        let selection = match self.selection() {
            Ok(selection) => selection,
            Err(e) => {
                eprintln!("error: {e}");
                return match chopsticks::interrupted() {
                    true => ExitCode::Interrupted,
                    false => ExitCode::Usage,
                };
            }
        };
        if let Some(path) = &self.apply_plan {
            if self.mode_read.load(Ordering::SeqCst) {
                eprintln!(
                    "error: --apply-plan: this tool read its mode (Fleet::mode) before Fleet::run, \
                     so its check pass would apply: the tool must call Fleet::mode inside the \
                     steps it gives to Fleet::run"
                );
                return ExitCode::Usage;
            }
            return self.run_plan(path, selection, steps);
        }
        let key = match self.save_plan.is_some() {
            true => match crate::plan::DigestKey::load(true) {
                Ok(key) => Some(key),
                Err(e) => {
                    eprintln!("error: --save-plan: {e}");
                    return ExitCode::Usage;
                }
            },
            false => None,
        };
        let group = self.group_of(&selection);
        let mut out = self.printer();
        self.run_batches(&group, &selection, &mut steps, &mut out, key.as_ref());
        let saved = match (&self.save_plan, &key) {
            (Some(path), Some(key)) => self.save_plan(path, &selection, &out, key),
            _ => true,
        };
        match (out.finish(), saved) {
            (ExitCode::Ok, false) => ExitCode::Usage,
            (code, _) => code,
        }
    }

    /// Refuses `--save-plan` without `--check`, `--apply-plan` with
    /// `--check` or `--save-plan`.
    fn check_plan_flags(&self) -> Result<(), CliError> {
        if self.save_plan.is_some() && !self.check {
            return Err(CliError::Flag(
                "--save-plan writes what a check run would change: give it with --check \
                 (--check --save-plan FILE), then apply the reviewed FILE with --apply-plan FILE"
                    .into(),
            ));
        }
        if self.apply_plan.is_some() && (self.check || self.save_plan.is_some()) {
            return Err(CliError::Flag(
                "--apply-plan applies a reviewed plan: give it without --check and --save-plan \
                 (it checks the hosts against the plan itself)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `steps` over `group`'s batches, stopping at Ctrl-C and past
    /// `--max-fail-percentage`. Each batch connects first (at most
    /// `--forks` hosts at once); its steps get only the hosts that
    /// connected.
    fn run_batches(
        &self,
        group: &Group,
        selection: &Selection,
        steps: &mut impl FnMut(&Group, &Selection, &mut Printer),
        out: &mut Printer,
        key: Option<&crate::plan::DigestKey>,
    ) {
        let batches = self.batches(group);
        let count = batches.len();
        for (i, batch) in batches.iter().enumerate() {
            self.run_batch(batch, selection, steps, out, key);
            if chopsticks::interrupted() {
                let rest: Vec<&str> = batches[i + 1..].iter().flat_map(|b| b.hosts()).collect();
                out.interrupted(i + 1, &rest);
                break;
            }
            let failed = out.batch_failed_percent();
            if let Some(limit) = self.max_fail_percentage {
                if failed > f64::from(limit) && i + 1 < count {
                    let rest: Vec<&str> = batches[i + 1..].iter().flat_map(|b| b.hosts()).collect();
                    out.stopped(i + 1, failed, limit, &rest);
                    break;
                }
            }
        }
    }

    /// `--save-plan`: writes the check run's planned steps to `path`, says
    /// where on stderr (and which hosts failed, which the plan then
    /// refuses). Whether it was written.
    fn save_plan(
        &self,
        path: &std::path::Path,
        selection: &Selection,
        out: &Printer,
        key: &crate::plan::DigestKey,
    ) -> bool {
        let sha256 = match crate::plan::tool_sha256() {
            Ok(sha256) => sha256,
            Err(e) => {
                eprintln!("error: cannot hash this tool's binary for the plan: {e}");
                return false;
            }
        };
        let run = out.run_record();
        let plan = crate::plan::SavedPlan::new(
            &run.tool,
            &sha256,
            &run.start,
            run.args.clone(),
            &selection.names(),
            out.planned(),
        )
        .digests_by(key);
        if let Err(e) = plan.write(path) {
            eprintln!("error: cannot write the plan to {}: {e}", path.display());
            return false;
        }
        let failed: Vec<&str> = plan
            .hosts
            .iter()
            .filter(|h| h.steps.iter().any(crate::plan::PlannedStep::failed))
            .map(|h| h.host.as_str())
            .collect();
        eprintln!(
            "plan of {} hosts written to {1}: review it, then apply it with --apply-plan {1}",
            plan.hosts.len(),
            path.display(),
        );
        if !failed.is_empty() {
            eprintln!(
                "the plan has failures on {}: --apply-plan refuses these hosts",
                failed.join(", ")
            );
        }
        true
    }

    /// `--apply-plan`: a check pass compared with the plan, then the
    /// apply on the hosts that match (see [`run`](Fleet::run)).
    fn run_plan(
        &self,
        path: &std::path::Path,
        selection: Selection,
        mut steps: impl FnMut(&Group, &Selection, &mut Printer),
    ) -> ExitCode {
        let plan = match crate::plan::SavedPlan::read(path) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::Usage;
            }
        };
        let checked = crate::plan::tool_sha256()
            .map_err(|e| format!("cannot hash this tool's binary to check the plan: {e}"))
            .and_then(|ours| plan.check_build(&ours, path));
        let key = match checked.and_then(|()| plan.key(path)) {
            Ok(key) => key,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::Usage;
            }
        };
        let shown = path.display();
        let mut out = self.printer();
        // Refused hosts: why, and whether they were unreachable.
        let mut refused: Vec<(String, String, bool)> = Vec::new();
        let planned = plan.by_host();
        let (known, missing): (Vec<Selected>, Vec<Selected>) = selection
            .hosts
            .into_iter()
            .partition(|h| planned.contains_key(h.name.as_str()));
        for host in missing {
            refused.push((
                host.name,
                format!(
                    "not in the reviewed plan {shown}: nothing reviewed to apply (make a plan \
                     for it with --check --save-plan, or leave it out with --limit)"
                ),
                false,
            ));
        }
        let matched = self.verify_plan(&plan, path, known, &mut steps, &mut refused, key.as_ref());
        // Refused before any interruption: in the recap, retry file and
        // journal either way.
        for (host, why, unreachable) in &refused {
            out.refuse(host, "(reviewed plan)", why, *unreachable);
        }
        let Some(matched) = matched else {
            eprintln!("interrupted while verifying the plan: nothing was applied");
            return out.finish();
        };
        if chopsticks::interrupted() {
            eprintln!("interrupted after verifying the plan: nothing was applied");
            return out.finish();
        }
        // The check pass is the plan's first batch: past the limit, the
        // batches of the apply do not start.
        let planned_hosts = matched.len() + refused.len();
        if let (Some(limit), false) = (self.max_fail_percentage, refused.is_empty()) {
            let share = 100.0 * refused.len() as f64 / planned_hosts as f64;
            if share > f64::from(limit) {
                let rest: Vec<&str> = matched.iter().map(|h| h.name.as_str()).collect();
                out.stopped_before_apply(share, limit, &rest);
                return out.finish();
            }
        }
        if !matched.is_empty() {
            let apply = Selection { hosts: matched };
            let group = self.group_of(&apply);
            self.run_batches(&group, &apply, &mut steps, &mut out, key.as_ref());
            let applied = crate::plan::steps_by_host(out.planned());
            let mut differ = Vec::new();
            for host in &apply.hosts {
                if out.host_failed(&host.name) {
                    continue;
                }
                let saved = planned.get(host.name.as_str()).copied().unwrap_or_default();
                let now = applied
                    .get(host.name.as_str())
                    .map_or(&[][..], Vec::as_slice);
                if let Some(d) = crate::plan::difference(saved, now, true) {
                    differ.push((host.name.as_str(), d));
                }
            }
            for (host, d) in differ {
                let why = format!("applied, but differs from the reviewed plan {shown}: {d}");
                out.refuse(host, "(reviewed plan)", &why, false);
            }
        }
        out.finish()
    }

    /// `--apply-plan`'s check pass: `steps` in [`Mode::Check`] on
    /// check-only tunnels to `hosts`, each host's steps compared with the
    /// plan's. The hosts that match, or `None` when interrupted; the
    /// others are added to `refused` with why.
    ///
    /// The apply then runs on exactly the hosts of the last check pass: a
    /// tool may derive one host's content from the others it runs on (a
    /// list of backends), so when a pass refuses some hosts, the rest are
    /// checked again as the group the apply will be, up to
    /// [`MAX_CHECK_PASSES`] passes; hosts still changing after that are
    /// refused too.
    fn verify_plan(
        &self,
        plan: &crate::plan::SavedPlan,
        path: &std::path::Path,
        mut hosts: Vec<Selected>,
        steps: &mut impl FnMut(&Group, &Selection, &mut Printer),
        refused: &mut Vec<(String, String, bool)>,
        key: Option<&crate::plan::DigestKey>,
    ) -> Option<Vec<Selected>> {
        let shown = path.display();
        let planned = plan.by_host();
        for pass in 1..=MAX_CHECK_PASSES {
            if hosts.is_empty() {
                return Some(hosts);
            }
            if !self.json && !self.quiet {
                let again = if pass > 1 {
                    " again, as the group the apply runs on"
                } else {
                    ""
                };
                eprintln!(
                    "verifying the reviewed plan {shown} on {} hosts{again} (check mode) ...",
                    hosts.len()
                );
            }
            let verify = Selection { hosts };
            let mut check = Printer::silent();
            self.verifying.store(true, Ordering::SeqCst);
            // Every planned host is checked: no --max-fail-percentage stop
            // here (the refusals count toward it after the pass).
            for batch in self.batches(&self.group_for(&verify, true)) {
                self.run_batch(&batch, &verify, steps, &mut check, key);
                if chopsticks::interrupted() {
                    break;
                }
            }
            self.verifying.store(false, Ordering::SeqCst);
            if chopsticks::interrupted() {
                return None;
            }
            let checked = crate::plan::steps_by_host(check.planned());
            let mut matched = Vec::new();
            let refused_before = refused.len();
            for host in verify.hosts {
                let saved = planned.get(host.name.as_str()).copied().unwrap_or_default();
                let now = checked
                    .get(host.name.as_str())
                    .map_or(&[][..], Vec::as_slice);
                match crate::plan::refusal(saved, now, &shown.to_string()) {
                    Some((why, unreachable)) => refused.push((host.name, why, unreachable)),
                    None => matched.push(host),
                }
            }
            if refused.len() == refused_before {
                return Some(matched);
            }
            hosts = matched;
        }
        for host in hosts {
            refused.push((
                host.name,
                format!(
                    "its check against the reviewed plan {shown} kept changing as other hosts \
                     were refused ({MAX_CHECK_PASSES} check passes): the tool derives its \
                     changes from the hosts it runs on, nothing applied (review a plan of the \
                     hosts that match, with --limit)"
                ),
                false,
            ));
        }
        Some(Vec::new())
    }
}

impl Fleet {
    /// One batch: its hosts connect first (at most `--forks` at once),
    /// and a host that cannot be reached is reported once; in a run that
    /// saves or applies a plan, the hosts that connected are given the
    /// key of content digests (a host that cannot take it fails, so no
    /// content goes uncompared); `steps` get the hosts left.
    fn run_batch(
        &self,
        batch: &Group,
        selection: &Selection,
        steps: &mut impl FnMut(&Group, &Selection, &mut Printer),
        out: &mut Printer,
        key: Option<&crate::plan::DigestKey>,
    ) {
        out.begin_batch(batch);
        let connected = batch.connect();
        out.connected(&connected);
        let mut ready = batch.without_failures(&connected);
        if let (Some(key), false) = (key, ready.is_empty()) {
            let keyed = ready.call(chopsticks::ops::set_digest_key, (key.key,));
            out.failures(DIGEST_KEY, &keyed);
            ready = ready.without_failures(&keyed);
        }
        if !ready.is_empty() && !chopsticks::interrupted() {
            steps(&ready, selection, out);
        }
    }
}

/// The step that gives a host the key of content digests, when it fails.
const DIGEST_KEY: &str = "(digest key)";

/// How many check passes `--apply-plan` makes at most before it applies:
/// each pass after the first checks the hosts the one before did not
/// refuse, as the group the apply runs on.
pub const MAX_CHECK_PASSES: usize = 3;

/// `value` as one line of JSON.
fn json_line(value: &impl serde::Serialize) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_default();
    line.push('\n');
    line
}

/// The terminal's password source of `--ask-pass`, one for the whole run:
/// asked once, whatever the number of hosts.
fn terminal_passwords() -> &'static PasswordSource {
    static SOURCE: std::sync::OnceLock<PasswordSource> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| Arc::new(chopsticks::passwords::terminal()))
}

type PasswordSource = Arc<dyn Fn(&chopsticks::PasswordPrompt<'_>) -> Option<String> + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        fleet: Fleet,
    }

    fn parse(args: &[&str]) -> Fleet {
        let mut argv = vec!["tool"];
        argv.extend(args);
        Cli::try_parse_from(argv).unwrap().fleet
    }

    #[test]
    fn flags_parse_as_ops_people_type_them() {
        let f = parse(&[
            "-H",
            "a,b",
            "-H",
            "c",
            "--sudo",
            "--timeout",
            "90s",
            "--serial",
            "25%",
        ]);
        assert_eq!(f.hosts, ["a,b", "c"]);
        assert_eq!(f.sudo.as_deref(), Some("root"));
        assert_eq!(f.timeout, Some(Duration::from_secs(90)));
        assert_eq!(f.serial, Some(Serial::Percent(25)));
        assert_eq!(f.connect_timeout, Duration::from_secs(30));
        let f = parse(&[
            "--sudo=postgres",
            "--control-persist",
            "-vv",
            "--color",
            "never",
        ]);
        assert_eq!(f.sudo.as_deref(), Some("postgres"));
        assert_eq!(f.control_persist, Some(Duration::from_secs(600)));
        assert_eq!((f.verbose, f.color), (2, Color::Never));
        assert!(Cli::try_parse_from(["tool", "-v", "-q"]).is_err());
        assert!(Cli::try_parse_from(["tool", "--serial", "0"]).is_err());
        assert!(Cli::try_parse_from(["tool", "--timeout", "5 parsecs"]).is_err());
        assert!(Cli::try_parse_from(["tool", "--max-fail-percentage", "101"]).is_err());
        // The journal's flags: `--history` alone, or with a host.
        let f = parse(&[
            "--history",
            "--diff",
            "--no-journal",
            "--junit",
            "r.xml",
            "--profile",
        ]);
        assert_eq!(f.history.as_deref(), Some(""));
        assert!(f.diff && f.no_journal && f.profile);
        assert_eq!(f.junit, Some(PathBuf::from("r.xml")));
        let f = parse(&["--history", "web1", "--journal", "/j"]);
        assert_eq!(f.history.as_deref(), Some("web1"));
        assert_eq!(f.journal_dir(), Some(PathBuf::from("/j")));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }

    /// `--save-plan` goes with `--check`, `--apply-plan` without it; a
    /// tool that read its mode before `run` cannot apply a plan; the check
    /// pass of `--apply-plan` reads as check mode.
    #[test]
    fn plan_flags_are_refused_where_they_do_not_fit() {
        let f = parse(&["-H", "a", "--save-plan", "p.json"]);
        let err = f.check_plan_flags().unwrap_err().to_string();
        assert!(
            err.starts_with(
                "--save-plan writes what a check run would change: give it with --check"
            ),
            "{err}"
        );
        assert_eq!(f.run(|_, _, _| panic!("no step runs")), ExitCode::Usage);
        assert!(parse(&["--check", "--save-plan", "p"])
            .check_plan_flags()
            .is_ok());
        let f = parse(&["-H", "a", "--check", "--apply-plan", "p.json"]);
        let err = f.check_plan_flags().unwrap_err().to_string();
        assert!(
            err.starts_with("--apply-plan applies a reviewed plan"),
            "{err}"
        );
        let f = parse(&["-H", "a", "--apply-plan", "/nonexistent/p.json"]);
        assert_eq!(f.mode(), Mode::Apply);
        assert_eq!(f.run(|_, _, _| panic!("no step runs")), ExitCode::Usage);
        f.verifying.store(true, Ordering::SeqCst);
        assert_eq!(f.mode(), Mode::Check);
        assert_eq!(f.clone().mode(), Mode::Check);
    }

    #[test]
    fn selections_batches_and_typed_vars() {
        let f = parse(&["-H", "web[1:5]", "--serial", "2"]);
        let group = f.group().unwrap();
        let sizes: Vec<usize> = f.batches(&group).iter().map(Group::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let f = parse(&["-H", "web[1:5]", "--serial", "50%"]);
        let sizes: Vec<usize> = f
            .batches(&f.group().unwrap())
            .iter()
            .map(Group::len)
            .collect();
        assert_eq!(sizes, [3, 2]);
        assert!(matches!(parse(&[]).selection(), Err(CliError::NoHosts)));
        let err = parse(&["-H", "a", "-l", "b"]).selection().unwrap_err();
        assert!(err.to_string().contains("`b` matches no host"), "{err}");
        let err = parse(&["-H", "a,b", "-l", "a:&b"]).selection().unwrap_err();
        assert!(matches!(err, CliError::Empty(_)), "{err}");
        let err = parse(&["-H", "a[0:59999]", "-H", "b[0:59999]"])
            .selection()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("more than the 100000 one run takes"),
            "{err}"
        );

        #[derive(serde::Deserialize, Debug)]
        struct Vars {
            #[serde(default)]
            port: u16,
        }
        let sel = parse(&["-H", "a"]).selection().unwrap();
        assert_eq!(sel.vars_as::<Vars>("a").unwrap().port, 0);
        let mut typed = sel.clone();
        typed.hosts[0].vars.insert("port".into(), "5432".into());
        assert_eq!(typed.vars_as::<Vars>("a").unwrap().port, 5432);
        typed.hosts[0].vars.insert("port".into(), "http".into());
        let err = typed.vars_as::<Vars>("a").unwrap_err().to_string();
        assert!(
            err.contains("a: its inventory variables do not fit"),
            "{err}"
        );
        assert_eq!(loose_scalar("80"), Value::from(80));
        assert_eq!(loose_scalar("'quoted'"), Value::from("quoted"));
        assert_eq!(loose_scalar("True"), Value::Bool(true));
        assert_eq!(loose_scalar("1.5"), Value::from(1.5));
        assert_eq!(loose_scalar("web"), Value::from("web"));
        let err = sel.vars_as::<Vars>("b").unwrap_err().to_string();
        assert!(err.contains("not a host of this selection"), "{err}");
    }

    /// Each host's tunnel carries its inventory name (results and
    /// `vars_as` are keyed by it), however it is reached.
    #[test]
    fn hosts_are_reached_as_the_inventory_says_under_their_own_names() {
        let dir = std::env::temp_dir().join(format!("cs-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inventory = dir.join("hosts");
        std::fs::write(
            &inventory,
            "web1 ansible_host=10.0.0.5 ansible_ssh_private_key_file=/keys/web\n\
             box ansible_connection=docker ansible_host=ctr-1 ansible_user=app\n\
             here ansible_connection=local\n\
             root-here ansible_connection=local ansible_become=yes\n\
             bad ansible_connection=local ansible_password=x\n",
        )
        .unwrap();
        let i = inventory.to_str().unwrap();
        let f = parse(&["-i", i, "-H", "docker:web", "-l", "!bad"]);
        let selection = f.selection().unwrap();
        let shown: Vec<String> = selection
            .hosts()
            .iter()
            .map(|h| {
                let b = f.builder(h);
                assert_eq!(b.host(), h.name);
                format!("{b:?}")
            })
            .collect();
        let has = |i: usize, what: &str| assert!(shown[i].contains(what), "{what}: {}", shown[i]);
        has(0, "destination: \"web1\"");
        has(0, "HostName=10.0.0.5");
        has(0, "identity_file: Some(\"/keys/web\")");
        has(1, "container: \"ctr-1\"");
        has(1, "user: Some(\"app\")");
        has(2, "kind: Local");
        has(3, "argv: [\"env\"]");
        has(3, "sudo: Some(\"root\")");
        has(4, "container: \"web\"");
        let err = parse(&["-i", i]).selection().unwrap_err().to_string();
        assert!(
            err.starts_with("bad: cannot be reached as its inventory says: ansible_password"),
            "{err}"
        );
        // `-H local`, and localhost where the inventory has none, is this
        // machine; the inventory's own localhost is reached as it says.
        let f = parse(&["-H", "local,localhost,127.0.0.1"]);
        for host in f.selection().unwrap().hosts() {
            assert_eq!(
                host.settings.connection,
                Some(Connection::Local),
                "{host:?}"
            );
            assert!(format!("{:?}", f.builder(host)).contains("kind: Local"));
        }
        std::fs::write(&inventory, "localhost ansible_port=2222\n").unwrap();
        let f = parse(&["-i", i, "-H", "localhost,local"]);
        let selection = f.selection().unwrap();
        assert_eq!(selection.hosts()[0].settings.connection, None);
        assert_eq!(selection.hosts()[0].settings.port, Some(2222));
        assert_eq!(
            selection.hosts()[1].settings.connection,
            Some(Connection::Local)
        );
        // Ansible's host list.
        let f = parse(&["-i", "web1,[::1]:2222,", "-l", "::1"]);
        let selection = f.selection().unwrap();
        assert_eq!(selection.names(), ["::1"]);
        assert_eq!(selection.hosts()[0].settings.port, Some(2222));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
