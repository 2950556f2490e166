//! A kit tool for the run journal's tests: `journal_tool -H HOSTS --dir
//! DIR --motd TEXT` writes `DIR/HOST.motd` (a step of one operation) and
//! `DIR/HOST.conf` then sleeps 0.3 s (a step of two, one call), reads
//! the kernel's name (a step of values), and with `--broken` writes
//! under a directory that does not exist (a step that fails).
//! `--db-password` is taken and ignored: the journal must not keep it.

use chopsticks::ops::{self, ChangedWhen, Mode, Report};
use chopsticks::{facts, remote};
use chopsticks_cli::{ExitCode, Fleet};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
    /// Where on the hosts the files go (a default, so that `--history`
    /// needs no other flag)
    #[arg(long, default_value = "/tmp/cs-journal-tool")]
    dir: String,
    /// What the files hold
    #[arg(long, default_value = "hello")]
    motd: String,
    /// Add a step that fails
    #[arg(long)]
    broken: bool,
    /// A secret the tool takes (and ignores)
    #[arg(long)]
    db_password: Option<String>,
}

/// Two steps in one call: a file, then a command that takes 0.3 s.
#[remote]
fn site(path: String, text: String, mode: Mode) -> Report {
    let mut report = Report::new();
    report.run("conf", || {
        ops::file(ops::File::new(&path).content(format!("{text}\n")), mode)
    });
    report.run("sleep", || {
        let sleep = ops::Command::new(["sleep", "0.3"]).changed_when(ChangedWhen::Never);
        ops::command(sleep, mode)
    });
    report
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    let mode = cli.fleet.mode();
    cli.fleet.run(|hosts, _selection, out| {
        let motd = |host: &str| {
            let file = ops::File::new(format!("{}/{host}.motd", cli.dir));
            (file.content(format!("{}\n", cli.motd)), mode)
        };
        out.changes("motd", &hosts.call_each(ops::file, motd));
        let conf = |host: &str| (format!("{}/{host}.conf", cli.dir), cli.motd.clone(), mode);
        out.changes("site", &hosts.call_each(site, conf));
        out.step_journaled("kernel", &hosts.call(facts::kernel, ()));
        if cli.broken {
            let file = ops::File::new("/nonexistent-cs-journal/x").content("x\n");
            out.changes("broken", &hosts.call(ops::file, (file, mode)));
        }
    })
}
