//! A deploy: brings hosts to a described state, one round trip per host.
//!
//! ```text
//! cargo run --example deploy -- [--check] [--diff] [-F SSH_CONFIG] [--greeting TEXT] HOST...
//! ```
//!
//! On each host: the package `cs-hello` installed (the test images carry it
//! in a local apt repository), a `cs-hello` group and system user, its
//! configuration file rendered here from typed values, a line in
//! `/etc/environment`, and the `cs-hello` service running and enabled,
//! restarted only when its configuration changed (skipped where systemd
//! does not run). `--check` prints the plan and changes nothing; `--diff`
//! shows content changes as unified diffs. The exit code is the recap's:
//! 0 all good, 2 some host failed, 4 some host unreachable.
//!
//! Against the test hosts (`tests/setup.sh` starts them):
//!
//! ```text
//! cargo run --example deploy -- -F target/testhosts/ssh_config --check --diff cs-systemd cs-deb12
//! cargo run --example deploy -- -F target/testhosts/ssh_config cs-systemd cs-deb12
//! cargo run --example deploy -- -F target/testhosts/ssh_config cs-systemd cs-deb12   # 0 changed
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use chopsticks::ops::{Mode, Recap, Report};
use chopsticks::Group;
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
        report.run("group", || ops::group(ops::Group::new("cs-hello"), mode));
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

struct Args {
    mode: Mode,
    diff: bool,
    ssh_config: Option<String>,
    site: Site,
    hosts: Vec<String>,
}

const USAGE: &str = "usage: deploy [--check] [--diff] [-F SSH_CONFIG] [--greeting TEXT] HOST...";

fn parse() -> Result<Args, String> {
    let mut args = Args {
        mode: Mode::Apply,
        diff: false,
        ssh_config: None,
        site: Site {
            greeting: "hello from chopsticks".into(),
            port: 8080,
            workers: 4,
            debug: false,
            admins: vec!["alice".into(), "bob".into()],
        },
        hosts: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--check" => args.mode = Mode::Check,
            "--diff" => args.diff = true,
            "-F" => args.ssh_config = Some(value("-F")?),
            "--greeting" => args.site.greeting = value("--greeting")?,
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}\n{USAGE}")),
            host => args.hosts.push(host.to_owned()),
        }
    }
    if args.hosts.is_empty() {
        return Err(format!("no host given\n{USAGE}"));
    }
    Ok(args)
}

#[chopsticks::main]
fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    };
    let ssh_config = args.ssh_config.clone();
    let group = Group::new(args.hosts.iter().map(String::as_str))
        .configure(move |b| {
            let b = b.connect_timeout(Duration::from_secs(20));
            match &ssh_config {
                Some(path) => b.ssh_config(path),
                None => b,
            }
        })
        .call_timeout(Duration::from_secs(300));
    let results = group.call(
        plan::converge,
        (args.site.clone(), args.site.render(), args.mode),
    );

    if args.mode == Mode::Check {
        println!("check mode: the plan below changed nothing");
    }
    for (host, result) in results.iter() {
        println!("{host}:");
        match result {
            Ok(report) => {
                let mut shown = report.clone();
                if !args.diff {
                    shown.steps.iter_mut().for_each(|(_, c)| c.diff = None);
                }
                for line in shown.to_string().lines() {
                    println!("  {line}");
                }
            }
            Err(e) => println!("  error: {e}"),
        }
    }
    let mut recap = Recap::new();
    recap.add::<Report>(&results);
    println!();
    recap.print();
    std::process::exit(recap.exit_code());
}
