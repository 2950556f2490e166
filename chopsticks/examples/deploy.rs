//! A deploy: brings hosts to a described state, one round trip per host.
//! Built on the CLI kit: hosts come from `-H` or an inventory (`-i`), and
//! `--check`, `--diff`, `--serial`, `--json` ... work as ops people expect.
//!
//! ```text
//! cargo run --example deploy -- [FLEET FLAGS] [--greeting TEXT]
//! ```
//!
//! On each host: the package `cs-hello` installed (the test images carry it
//! in a local apt repository), a `cs-hello` group and system user, its
//! configuration file rendered here from typed values, a line in
//! `/etc/environment`, and the `cs-hello` service running and enabled,
//! restarted only when its configuration changed (skipped where systemd
//! does not run). A host's inventory variables `greeting` and `port`
//! override the flag and the default for that host. `--check` prints the
//! plan and changes nothing; `--diff` shows content changes as unified
//! diffs. The exit code is the recap's: 0 all good, 2 some host failed, 4
//! some host unreachable, 1 bad flags or inventory.
//!
//! Against the test hosts (`tests/setup.sh` starts them):
//!
//! ```text
//! cargo run --example deploy -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12 --check --diff
//! cargo run --example deploy -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12
//! cargo run --example deploy -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12   # 0 changed
//! ```

use std::fmt::Write as _;

use chopsticks::ops::Mode;
use chopsticks_cli::ExitCode;
use clap::Parser;
use serde::{Deserialize, Serialize};

/// What the site should look like: typed values, rendered into the
/// configuration file on the controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Site {
    greeting: String,
    port: u16,
    workers: u32,
    debug: bool,
    admins: Vec<String>,
}

impl Site {
    /// The configuration file: each value written as its type says (a
    /// string quoted and escaped, a bool as `true`/`false`).
    fn render(&self) -> String {
        let quoted = |s: &str| format!("{s:?}");
        let mut out = String::from("# written by chopsticks' deploy example; edits are replaced\n");
        let _ = writeln!(out, "greeting = {}", quoted(&self.greeting));
        let _ = writeln!(out, "port = {}", self.port);
        let _ = writeln!(out, "workers = {}", self.workers);
        let _ = writeln!(out, "debug = {}", self.debug);
        let admins: Vec<String> = self.admins.iter().map(|a| quoted(a)).collect();
        let _ = writeln!(out, "admins = [{}]", admins.join(", "));
        out
    }
}

/// The plan, run on each host by its agent: one call does it all, and a
/// step that depends on an earlier one (the restart) sees its change.
mod plan {
    use chopsticks::facts::{self, Fact};
    use chopsticks::ops::{self, Change, Mode, Report};
    use chopsticks::remote;

    use super::Site;

    const CONF: &str = "/etc/cs-hello.conf";

    #[remote]
    pub fn converge(site: Site, config: String, mode: Mode) -> Report {
        let mut report = Report::new();
        report.run("package", || {
            ops::package(ops::Package::new(["cs-hello"]), mode)
        });
        report.run("group", || {
            ops::unix_group(ops::UnixGroup::new("cs-hello"), mode)
        });
        report.run("user", || {
            let user = ops::User::new("cs-hello")
                .group("cs-hello")
                .home("/var/lib/cs-hello")
                .shell("/usr/sbin/nologin");
            ops::user(user, mode)
        });
        let config_changed = report
            .run("config", || {
                let file = ops::File::new(CONF)
                    .content(config)
                    .mode(0o640)
                    .owner("root")
                    .group("cs-hello");
                ops::file(file, mode)
            })
            .is_some_and(|c| c.changed);
        report.run("environment", || {
            let line = ops::Line::new("/etc/environment", format!("CS_HELLO_PORT={}", site.port))
                .matching("^CS_HELLO_PORT=");
            ops::line(line, mode)
        });
        // A fact decides: where systemd does not run, there is no service
        // to manage, and the report says so.
        match facts::service("cs-hello".to_owned()) {
            Ok(Fact::NotAvailable(why)) => {
                report.run("service", || {
                    Ok(Change {
                        summary: format!("skipped: {why}"),
                        ..Change::default()
                    })
                });
            }
            _ => {
                report.run("service", || {
                    let service = ops::Service::new("cs-hello").enabled(true);
                    let service = match config_changed {
                        true => service.restarted(),
                        false => service.running(),
                    };
                    ops::service(service, mode)
                });
            }
        }
        report
    }
}

/// Brings hosts to the described state: package, user, config file,
/// environment line, service.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: chopsticks_cli::Fleet,
    /// The greeting in the config file (a host's `greeting` variable wins)
    #[arg(long, default_value = "hello from chopsticks")]
    greeting: String,
}

/// What a host's inventory variables may change.
#[derive(Debug, Default, Deserialize)]
struct HostVars {
    greeting: Option<String>,
    port: Option<u16>,
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    let site = Site {
        greeting: cli.greeting.clone(),
        port: 8080,
        workers: 4,
        debug: false,
        admins: vec!["alice".into(), "bob".into()],
    };
    let mode = cli.fleet.mode();
    if mode == Mode::Check && !cli.fleet.json {
        println!("check mode: the plan below changes nothing");
    }
    cli.fleet.run(|hosts, selection, out| {
        // Each host's site: the flags, then its inventory variables.
        let mut sites = std::collections::HashMap::new();
        for host in hosts.hosts() {
            let vars: HostVars = match selection.vars_as(host) {
                Ok(vars) => vars,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::Usage.exit();
                }
            };
            let mut own = site.clone();
            own.greeting = vars.greeting.unwrap_or(own.greeting);
            own.port = vars.port.unwrap_or(own.port);
            let config = own.render();
            sites.insert(host.to_owned(), (own, config));
        }
        let results = hosts.call_each(plan::converge, |host| {
            let (site, config) = sites[host].clone();
            (site, config, mode)
        });
        out.changes("deploy", &results);
    })
}
