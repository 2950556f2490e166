//! Your Ansible inventory, as it is: the OS of every host a pattern selects,
//! and what each host's inventory variables say it is for.
//!
//! ```text
//! cargo run --example inventory -- -i /etc/ansible/hosts -l 'web:&prod:!web3'
//! cargo run --example inventory -- -i inventory.yml -l '~db\d+' --json
//! ```
//!
//! A host's variables (its own, its groups', `all`'s, merged as Ansible
//! merges them) reach the host's `#[remote]` function as a typed struct.

use chopsticks::{facts, remote};
use chopsticks_cli::ExitCode;
use clap::Parser;
use serde::{Deserialize, Serialize};

/// The OS of each selected host, and its role from the inventory.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: chopsticks_cli::Fleet,
}

/// What this tool reads from a host's inventory variables.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Role {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    http_port: Option<u16>,
}

/// Runs on the host: its role as the inventory says, and what it runs.
#[remote]
fn describe(role: Role) -> std::io::Result<String> {
    let os = match facts::os()? {
        chopsticks::facts::Fact::Known(os) => os.pretty_name,
        chopsticks::facts::Fact::NotAvailable(why) => format!("OS unknown ({why})"),
    };
    let what = role.role.unwrap_or_else(|| "no role".into());
    // What a host says along the way: shown with -v.
    eprintln!("read /etc/os-release");
    log::info!("described as {what}");
    Ok(match role.http_port {
        Some(port) => format!("{what} on port {port}, {os}"),
        None => format!("{what}, {os}"),
    })
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    cli.fleet.run(|hosts, selection, out| {
        let mut roles = std::collections::HashMap::new();
        for host in hosts.hosts() {
            match selection.vars_as::<Role>(host) {
                Ok(role) => roles.insert(host.to_owned(), role),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::Usage.exit();
                }
            };
        }
        out.step("kernel", &hosts.call(facts::kernel, ()));
        out.step(
            "describe",
            &hosts.call_each(describe, |host| (roles[host].clone(),)),
        );
    })
}
