//! A deploy: brings hosts to a described state, one round trip per host.
//! Built on the CLI kit: hosts come from `-H` or an inventory (`-i`), and
//! `--check`, `--diff`, `--serial`, `--json` ... work as ops people expect.
//!
//! ```text
//! cargo run --example deploy --features template -- [FLEET FLAGS] [--greeting TEXT]
//! ```
//!
//! On each host: the package `cs-hello` installed (the test images carry it
//! in a local apt repository), a `cs-hello` group and system user with the
//! deploy key in its `authorized_keys`, its configuration file rendered on
//! the host from the template `cs-hello.conf.j2` and typed values, a line
//! in `sshd_config` that `sshd -t` validates before it lands (the old file
//! kept as a backup), a line in `/etc/environment`, and the `cs-hello`
//! service running and enabled, restarted by a handler when its
//! configuration changed (skipped where systemd does not run). The
//! restart is never lost: its notification is kept on the host until it
//! succeeds, so a run that stops in between restarts it the next time.
//! A host's inventory variables `greeting` and `port` override the flag
//! and the default for that host. `--check` prints the plan (and which
//! handlers would run, and why) and changes nothing; `--diff` shows
//! content changes as unified diffs. The exit code is the recap's: 0 all good, 2 some host failed, 4
//! some host unreachable, 1 bad flags or inventory.
//!
//! Against the test hosts (`tests/setup.sh` starts them):
//!
//! ```text
//! cargo run --example deploy --features template -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12 --check --diff
//! cargo run --example deploy --features template -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12
//! cargo run --example deploy --features template -- -F target/testhosts/ssh_config -H cs-systemd,cs-deb12   # 0 changed
//! ```

use chopsticks_cli::ExitCode;
use clap::Parser;
use serde::{Deserialize, Serialize};

/// What the site should look like: typed values, rendered into the
/// configuration file on each host by the template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Site {
    greeting: String,
    port: u16,
    workers: u32,
    debug: bool,
    admins: Vec<String>,
}

/// The plan, run on each host by its agent: one call does it all, and a
/// step that depends on an earlier one's change (the restart) is a
/// handler the earlier step notifies.
mod plan {
    use chopsticks::facts::{self, Fact};
    use chopsticks::ops::{self, Change, Mode, Report};
    use chopsticks::remote;

    use super::Site;

    const CONF: &str = "/etc/cs-hello.conf";

    /// The template, compiled into the tool (`Template::from_file` reads
    /// one at run time instead).
    const TEMPLATE: &str = include_str!("cs-hello.conf.j2");

    /// The key deploys of cs-hello log in with.
    const DEPLOY_KEY: &str = "ssh-ed25519 \
        AAAAC3NzaC1lZDI1NTE5AAAAIJd9xACkkkCSEc1OJt7B5s5vFxITxJVJC0IfU4oXCStj deploy@chopsticks-example";

    #[remote]
    pub fn converge(site: Site, mode: Mode) -> Report {
        let mut report = Report::plan("cs-hello", mode);
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
        report.run("deploy key", || {
            let key = ops::AuthorizedKey::new("cs-hello", DEPLOY_KEY).options("no-pty");
            ops::authorized_key(key, mode)
        });
        // The configuration's change notifies the restart: kept on the
        // host until the restart succeeds, so a run that stops before it
        // (a later step fails, the run is interrupted) leaves it pending,
        // and the next run restarts, even when it changes nothing else.
        report.run("config", || {
            let file = ops::Template::new(CONF, TEMPLATE)
                .named("cs-hello.conf.j2")
                .vars(&site)
                .mode(0o640)
                .owner("root")
                .group("cs-hello");
            ops::template(file, mode)
        });
        report.notify("restart cs-hello");
        // A bad line would keep sshd from starting again, locking everyone
        // out: `sshd -t` checks the new file before it replaces the old.
        report.run("sshd", || {
            let line = ops::Line::new("/etc/ssh/sshd_config", "ClientAliveInterval 300")
                .matching("^#?ClientAliveInterval")
                .validate("/usr/sbin/sshd -t -f %s")
                .backup();
            ops::line(line, mode)
        });
        report.run("environment", || {
            let line = ops::Line::new("/etc/environment", format!("CS_HELLO_PORT={}", site.port))
                .matching("^CS_HELLO_PORT=");
            ops::line(line, mode)
        });
        // A fact decides: where systemd does not run, there is no service
        // to manage, and the report says so.
        let skipped = match facts::service("cs-hello".to_owned()) {
            Ok(Fact::NotAvailable(why)) => Some(Change {
                summary: format!("skipped: {why}"),
                ..Change::default()
            }),
            _ => None,
        };
        let service = |wanted: ops::Service| match &skipped {
            Some(skipped) => Ok(skipped.clone()),
            None => ops::service(wanted, mode),
        };
        report.run("service", || {
            service(ops::Service::new("cs-hello").enabled(true).running())
        });
        // Handlers run where they are declared, once, if notified in this
        // run or left pending by an earlier one.
        report.handler("restart cs-hello", || {
            service(ops::Service::new("cs-hello").restarted())
        });
        report
    }
}

/// Brings hosts to the described state: package, user and its key, config
/// file, sshd and environment lines, service.
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
    if cli.fleet.check && !cli.fleet.json {
        println!("check mode: the plan below changes nothing");
    }
    cli.fleet.run(|hosts, selection, out| {
        // Asked here, not before `run`: with `--apply-plan` the same steps
        // run twice, first in check mode against the reviewed plan.
        let mode = cli.fleet.mode();
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
            sites.insert(host.to_owned(), own);
        }
        let results = hosts.call_each(plan::converge, |host| (sites[host].clone(), mode));
        out.changes("deploy", &results);
    })
}
