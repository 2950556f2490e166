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
//! fn main() {
//!     let cli: Cli = chopsticks_cli::parse();
//!     let code = cli.fleet.run(|hosts, _selection, out| {
//!         out.step("kernel", &hosts.call(facts::kernel, ()));
//!         let motd = ops::File::new("/etc/motd").content(format!("{}\n", cli.motd));
//!         out.changes("motd", &hosts.call(ops::file, (motd, cli.fleet.mode())));
//!     });
//!     std::process::exit(code);
//! }
//! ```
//!
//! `tool -i hosts.ini -l 'web:&prod:!web3' --check --diff`, `tool -H
//! web[01:20].example --serial 25% --max-fail-percentage 10`, `tool --limit
//! @~/.local/state/chopsticks/tool.retry`, `tool --json | jq`: see
//! [`Fleet`] for every flag.
//!
//! # Exit codes
//! [`exit::OK`] 0, [`exit::USAGE`] 1 (bad flags, inventory or pattern),
//! [`exit::FAILED`] 2 (something failed on a host), [`exit::UNREACHABLE`] 4
//! (a host could not be reached), as Ansible's.

#![warn(missing_docs)]

mod fleet;
pub mod hosts;
pub mod inventory;
mod logger;
pub mod pattern;
mod report;

use std::fmt;

pub use fleet::{Fleet, Selected, Selection, Serial};
pub use inventory::{Inventory, InventoryError, Settings};
pub use report::{Color, Output, StepChanges};

/// The exit codes of a tool built with this kit, as Ansible's.
pub mod exit {
    /// Every host reached, nothing failed.
    pub const OK: i32 = 0;
    /// Bad flags, an unreadable inventory, a pattern that matches nothing.
    pub const USAGE: i32 = 1;
    /// Something failed on some host.
    pub const FAILED: i32 = 2;
    /// Some host could not be reached.
    pub const UNREACHABLE: i32 = 4;
}

/// Why a tool cannot start its run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// No `-H` and no `-i`.
    NoHosts,
    /// A host list or range that cannot be read.
    Hosts(String),
    /// An inventory that cannot be read.
    Inventory(InventoryError),
    /// A `--limit` pattern that cannot be used.
    Pattern(String),
    /// The selection is empty (the pattern given).
    Empty(String),
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
            CliError::NoHosts => f.write_str("no hosts: give -H HOSTS or -i INVENTORY"),
            CliError::Hosts(e) | CliError::Pattern(e) => f.write_str(e),
            CliError::Inventory(e) => e.fmt(f),
            CliError::Empty(limit) => write!(
                f,
                "--limit '{limit}' selects no host: nothing to do (check the pattern's & and !)"
            ),
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
/// [`exit::USAGE`] (1) on a usage error, not clap's 2, which means "a host
/// failed" here (`--help` and `--version` still exit 0).
pub fn parse<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        })
    })
}
