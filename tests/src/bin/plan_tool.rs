//! A kit tool for saved plans' tests: `plan_tool -H HOSTS --dir DIR
//! --text TEXT` writes `DIR/HOST.conf` (step `conf`), `DIR/HOST.motd`
//! (step `site/motd`, a report of one operation) and reads the kernel's
//! name (a step of values, which a plan leaves out). `--db-password` is
//! taken and ignored: a saved plan must not keep it. The mode is read
//! inside the steps, as `--apply-plan` needs. `--sneak` changes the
//! `.conf` files behind the run's back in apply mode, just before the
//! `conf` step (not a step of the run): a host that changes between
//! `--apply-plan`'s check pass and its apply. `--peers` adds the names of
//! the hosts the run works on to the `.conf` files: a host's content that
//! depends on which other hosts run. `--secret TEXT` writes TEXT to
//! `DIR/HOST.key` as secret content (step `key`, no diff).

use chopsticks::ops::{self, Mode, Report};
use chopsticks::{facts, remote};
use chopsticks_cli::{ExitCode, Fleet};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
    /// Where on the hosts the files go
    #[arg(long, default_value = "/tmp/cs-plan-tool")]
    dir: String,
    /// What the files hold
    #[arg(long, default_value = "hello")]
    text: String,
    /// A secret the tool takes (and ignores)
    #[arg(long)]
    db_password: Option<String>,
    /// In apply mode, write `sneaked` to the .conf files before the conf step
    #[arg(long)]
    sneak: bool,
    /// Add the run's hosts to the .conf files
    #[arg(long)]
    peers: bool,
    /// Secret content for DIR/HOST.key
    #[arg(long)]
    secret: Option<String>,
}

/// One step in a report: the motd file.
#[remote]
fn site(path: String, text: String, mode: Mode) -> Report {
    let mut report = Report::new();
    report.run("motd", || {
        ops::file(ops::File::new(&path).content(format!("{text}\n")), mode)
    });
    report
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    cli.fleet.run(|hosts, selection, out| {
        let mode = cli.fleet.mode();
        if cli.sneak && mode == Mode::Apply {
            let sneak = |host: &str| {
                let file = ops::File::new(format!("{}/{host}.conf", cli.dir));
                (file.content("sneaked\n"), Mode::Apply)
            };
            let _ = hosts.call_each(ops::file, sneak);
        }
        let peers = match cli.peers {
            true => format!("peers: {}\n", selection.names().join(",")),
            false => String::new(),
        };
        let conf = |host: &str| {
            let file = ops::File::new(format!("{}/{host}.conf", cli.dir));
            (file.content(format!("{}\n{peers}", cli.text)), mode)
        };
        out.changes("conf", &hosts.call_each(ops::file, conf));
        if let Some(secret) = &cli.secret {
            let key = |host: &str| {
                let file = ops::File::new(format!("{}/{host}.key", cli.dir));
                (file.content(secret.clone()).mode(0o600).secret(), mode)
            };
            out.changes("key", &hosts.call_each(ops::file, key));
        }
        out.step("kernel", &hosts.call(facts::kernel, ()));
        let motd = |host: &str| (format!("{}/{host}.motd", cli.dir), cli.text.clone(), mode);
        out.changes("site", &hosts.call_each(site, motd));
    })
}
