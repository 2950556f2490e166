//! A kit tool whose plan notifies handlers, for the handler tests
//! (`tests/tests/hosts/handlers.rs`): on each host, step `config` writes
//! `DIR/app.conf` and notifies `reload`, then `restart` (the reverse of
//! the order they are declared in); then, when asked,
//! step `broken` fails, or step `wait` sleeps (`sleep 300` with
//! `CS_MARKER=M` in its environment, for a test to find and interrupt);
//! then the handlers `restart` and `reload` each append their name to
//! `DIR/handled.log`; then, when asked (`--late`), step `late` changes
//! something and notifies `restart` again, after its handler ran.
//!
//! `handler_tool -H HOSTS --plan NAME --dir DIR --content TEXT [--fail]
//! [--sleep M] [--late] [--check] [--json]`

use chopsticks::ops::{self, ChangedWhen, Mode, OpError, Report};
use chopsticks::remote;
use chopsticks_cli::{ExitCode, Fleet};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
    /// The plan's name (its handler state file's)
    #[arg(long)]
    plan: String,
    /// The directory on the host that holds app.conf and handled.log
    #[arg(long)]
    dir: String,
    /// What app.conf holds
    #[arg(long)]
    content: String,
    /// A step after the notification fails
    #[arg(long)]
    fail: bool,
    /// A step after the notification sleeps, with this marker
    #[arg(long)]
    sleep: Option<String>,
    /// A step after the handlers notifies `restart` again
    #[arg(long)]
    late: bool,
}

/// What the plan is told.
#[derive(serde::Serialize, serde::Deserialize)]
struct Args {
    plan: String,
    dir: String,
    content: String,
    fail: bool,
    sleep: Option<String>,
    late: bool,
}

/// Appends `name` to `DIR/handled.log`.
fn handled(dir: &str, name: &str, mode: Mode) -> Result<ops::Change, OpError> {
    let log = format!("{dir}/handled.log");
    let append = ops::Command::new(["sh", "-c", "echo \"$1\" >>\"$2\"", "sh", name, log.as_str()])
        .changed_when(ChangedWhen::Always);
    ops::command(append, mode)
}

#[remote]
fn converge(args: Args, mode: Mode) -> Report {
    let mut report = Report::plan(&args.plan, mode);
    report.run("config", || {
        let conf = ops::File::new(format!("{}/app.conf", args.dir)).content(&args.content);
        ops::file(conf, mode)
    });
    report.notify("reload");
    report.notify("restart");
    if args.fail {
        report.run("broken", || {
            Err(OpError::new("handler_tool", "broken", "fails on purpose"))
        });
    }
    if let Some(marker) = &args.sleep {
        report.run("wait", || {
            let sleep = ops::Command::new(["sh", "-c", "sleep 300; echo done"])
                .env("CS_MARKER", marker)
                .changed_when(ChangedWhen::Always);
            ops::command(sleep, mode)
        });
    }
    report.handler("restart", || handled(&args.dir, "restart", mode));
    report.handler("reload", || handled(&args.dir, "reload", mode));
    if args.late {
        report.run("late", || {
            let touch = ops::Command::new(["true"]).changed_when(ChangedWhen::Always);
            ops::command(touch, mode)
        });
        report.notify("restart");
    }
    report
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    let mode = cli.fleet.mode();
    cli.fleet.run(|hosts, _selection, out| {
        let args = || Args {
            plan: cli.plan.clone(),
            dir: cli.dir.clone(),
            content: cli.content.clone(),
            fail: cli.fail,
            sleep: cli.sleep.clone(),
            late: cli.late,
        };
        out.changes("plan", &hosts.call_each(converge, |_| (args(), mode)));
    })
}
