//! A small ops tool: a table of facts for each host, or for a local tunnel
//! when no host is given. Built on the CLI kit, so it takes the flags ops
//! people expect (`--help` lists them).
//!
//! ```text
//! cargo run --release --example facts
//! cargo run --release --example facts -- -H web1,db[1:2] [-F ssh_config]
//! cargo run --release --example facts -- -i hosts.ini -l 'web:&prod:!web3'
//! cargo run --release --example facts -- -H docker:CONTAINER --json
//! ```
//!
//! Hosts are reached with the system `ssh` (your `~/.ssh/config`, agent and
//! known_hosts apply), `docker:NAME` with `docker exec` into a running
//! container, all in parallel; nothing needs to be installed on them. Each
//! host's row is gathered on the host in one call.

use chopsticks::ops::Recap;
use chopsticks::{facts, remote, Group, Tunnel};
use chopsticks_cli::ExitCode;
use clap::Parser;
use serde::{Deserialize, Serialize};

/// A table of facts for each host (this machine, through a local tunnel,
/// when no host is given).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: chopsticks_cli::Fleet,
}

/// One host's row; a fact the host lacks is `-`, and why is in `missing`.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    hostname: String,
    ip: String,
    kernel: String,
    uptime: String,
    load: String,
    missing: Vec<String>,
}

/// The row, gathered on the host: one round trip for all of it.
#[remote]
fn row() -> Row {
    let mut missing = Vec::new();
    let mut cell = |name: &str, value: std::io::Result<String>| {
        value.unwrap_or_else(|e| {
            missing.push(format!("no {name}: {e}"));
            "-".to_owned()
        })
    };
    let load = std::fs::read_to_string("/proc/loadavg").map(|text| {
        let fields: Vec<&str> = text.split_whitespace().take(3).collect();
        fields.join(" ")
    });
    Row {
        hostname: cell("hostname", facts::hostname()),
        ip: cell("IP", facts::ip().map(|ip| ip.to_string())),
        kernel: cell("kernel", facts::kernel()),
        uptime: cell("uptime", facts::uptime().map(human)),
        load: cell("load", load),
        missing,
    }
}

fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 86_400, s / 3_600 % 24, s / 60 % 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    let group = if cli.fleet.is_empty() {
        match Tunnel::local() {
            Ok(t) => Group::from(t),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::Unreachable;
            }
        }
    } else {
        match cli.fleet.group() {
            Ok(group) => group,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::Usage;
            }
        }
    };
    let rows = group.call(row, ());
    if cli.fleet.json {
        let mut out = cli.fleet.printer();
        out.step_journaled("facts", &rows);
        return out.finish();
    }
    println!(
        "{:<16} {:<20} {:<16} {:<24} {:<10} LOAD",
        "HOST", "HOSTNAME", "IP", "KERNEL", "UPTIME"
    );
    for (host, result) in rows.iter() {
        match result {
            Ok(r) => {
                println!(
                    "{host:<16} {:<20} {:<16} {:<24} {:<10} {}",
                    r.hostname, r.ip, r.kernel, r.uptime, r.load
                );
                for why in &r.missing {
                    eprintln!("{host}: {why}");
                }
            }
            Err(e) => println!("{host:<16} error: {e}"),
        }
    }
    let mut recap = Recap::new();
    recap.add_values(&rows);
    ExitCode::of(&recap)
}
