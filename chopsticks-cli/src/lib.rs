//! The interface ops engineers expect, for single-binary chopsticks tools:
//! host lists and ranges, inventories (chopsticks TOML, Ansible INI and
//! YAML as they are), Ansible's patterns, the standard flags, per-host
//! output or JSON, a recap, rolling batches and Ansible's exit codes.
//!
//! ```no_run
//! use chopsticks::{facts, ops};
//! use clap::Parser;
//!
//! /// Puts a message of the day on every host.
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     fleet: chopsticks_cli::Fleet,
//!     #[arg(long, default_value = "managed by chopsticks")]
//!     motd: String,
//! }
//!
//! #[chopsticks::main]
//! fn main() -> chopsticks_cli::ExitCode {
//!     let cli: Cli = chopsticks_cli::parse();
//!     cli.fleet.run(|hosts, _selection, out| {
//!         out.step("kernel", &hosts.call(facts::kernel, ()));
//!         let motd = ops::File::new("/etc/motd").content(format!("{}\n", cli.motd));
//!         out.changes("motd", &hosts.call(ops::file, (motd, cli.fleet.mode())));
//!     })
//! }
//! ```
//!
//! `tool -i hosts.ini -l 'web:&prod:!web3' --check --diff`, `tool -H
//! web[01:20].example --serial 25% --max-fail-percentage 10`, `tool --limit
//! @~/.local/state/chopsticks/tool.retry`, `tool --json | jq`: see
//! [`Fleet`] for every flag. Every run leaves a record in the tool's
//! [`journal`] (`tool --history`, `tool --history web1 --diff`); `--junit
//! FILE` writes it as JUnit XML for CI, `--profile` lists the slowest
//! steps. `--check --save-plan FILE` writes what would change for review,
//! and `--apply-plan FILE` applies exactly that, refusing the hosts that
//! no longer match it ([`plan`]).
//!
//! # Exit codes
//! [`ExitCode`]: 0 all good, 1 bad flags, inventory or pattern, 2 something
//! failed on a host, 4 a host could not be reached, as Ansible's; 130 after
//! Ctrl-C, SIGTERM or SIGHUP (the first stops the run: no new host or
//! batch starts, the calls in flight are cancelled on their hosts, the
//! recap names the interrupted hosts, the journal records the run; a
//! second one quits at once, without a record).

#![warn(missing_docs)]

mod fleet;
pub mod history;
pub mod hosts;
mod interrupt;
pub mod inventory;
pub mod journal;
pub mod junit;
mod logger;
pub mod pattern;
pub mod plan;
mod printer;

use std::fmt;

use chopsticks::ops::Recap;

pub use fleet::{Fleet, Selected, Selection, Serial, MAX_CHECK_PASSES};
pub use inventory::{Inventory, InventoryError, Settings};
pub use printer::{Printer, StepChanges};

/// How a tool built with this kit exits, as Ansible does: the one place
/// these numbers are defined. `main` may return it (`fn main() ->
/// ExitCode`), or pass [`code`](ExitCode::code) to `std::process::exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// 0: every host reached, nothing failed.
    Ok = 0,
    /// 1: bad flags, an unreadable inventory, a pattern that matches
    /// nothing.
    Usage = 1,
    /// 2: something failed on some host.
    Failed = 2,
    /// 4: some host could not be reached.
    Unreachable = 4,
    /// 130: the run was interrupted (Ctrl-C), as a shell reports SIGINT.
    Interrupted = 130,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// How a run with this recap went: `Interrupted` before `Unreachable`
    /// before `Failed` before `Ok`.
    pub fn of(recap: &Recap) -> ExitCode {
        if recap.interrupted() || chopsticks::interrupted() {
            ExitCode::Interrupted
        } else if recap.unreachable() {
            ExitCode::Unreachable
        } else if recap.failed() {
            ExitCode::Failed
        } else {
            ExitCode::Ok
        }
    }

    /// Exits the process with this code.
    pub fn exit(self) -> ! {
        std::process::exit(self.code())
    }
}

impl std::process::Termination for ExitCode {
    fn report(self) -> std::process::ExitCode {
        std::process::ExitCode::from(self as u8)
    }
}

/// Why a tool cannot start its run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// No `-H` and no `-i`.
    NoHosts,
    /// A host list or range that cannot be read.
    Hosts(String),
    /// A flag's value that cannot be used (`-J`, `-u`, `--sudo`): which,
    /// and why.
    Flag(String),
    /// An inventory that cannot be read.
    Inventory(InventoryError),
    /// A `--limit` pattern that cannot be used.
    Pattern(String),
    /// The selection is empty (the pattern given).
    Empty(String),
    /// A bound on what one run takes was passed (hosts selected, group
    /// memberships): which, and what to do.
    Bound(String),
    /// A host's connection variables ask for what chopsticks cannot do
    /// (see [`Settings::from_ansible_vars`](crate::inventory::Settings::from_ansible_vars)).
    Connection {
        /// The host.
        host: String,
        /// Which variable, and what to do instead.
        message: String,
    },
    /// A host's variables do not fit the type asked for.
    Vars {
        /// The host.
        host: String,
        /// What does not fit.
        message: String,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::NoHosts => f.write_str(
                "no hosts: give -H HOSTS or -i INVENTORY (-H local for this machine, without ssh)",
            ),
            CliError::Hosts(e) | CliError::Pattern(e) | CliError::Flag(e) | CliError::Bound(e) => {
                f.write_str(e)
            }
            CliError::Inventory(e) => e.fmt(f),
            CliError::Empty(limit) => write!(
                f,
                "--limit '{limit}' selects no host: nothing to do (check the pattern's & and !)"
            ),
            CliError::Connection { host, message } => {
                write!(
                    f,
                    "{host}: cannot be reached as its inventory says: {message}"
                )
            }
            CliError::Vars { host, message } => {
                write!(f, "{host}: its inventory variables do not fit: {message}")
            }
        }
    }
}

impl std::error::Error for CliError {}

impl From<InventoryError> for CliError {
    fn from(e: InventoryError) -> CliError {
        CliError::Inventory(e)
    }
}

/// Parses the command line into `T`, as `T::parse()` does, but exits with
/// [`ExitCode::Usage`] (1) on a usage error, not clap's 2, which means "a
/// host failed" here (`--help` and `--version` still exit 0). It also
/// tells the journal the tool's flags ([`journal::set_command`]), so that
/// it masks their secret values.
pub fn parse<T: clap::Parser>() -> T {
    journal::set_command(T::command());
    T::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        match e.use_stderr() {
            true => ExitCode::Usage.exit(),
            false => ExitCode::Ok.exit(),
        }
    })
}
