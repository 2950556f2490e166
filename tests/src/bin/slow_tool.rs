//! A kit tool whose one step runs a long command on every host, for the
//! Ctrl-C test: `slow_tool -H HOSTS --marker M` runs `sleep 300` with
//! `CS_MARKER=M` in its environment, so the test finds it on the hosts.

use chopsticks::ops::{self, ChangedWhen};
use chopsticks_cli::{ExitCode, Fleet};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
    /// What the remote processes carry in their environment
    #[arg(long)]
    marker: String,
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    cli.fleet.run(|hosts, _selection, out| {
        let sleep = ops::Command::new(["sh", "-c", "sleep 300; echo done"])
            .env("CS_MARKER", &cli.marker)
            .changed_when(ChangedWhen::Always);
        out.changes(
            "sleep",
            &hosts.call(ops::command, (sleep, cli.fleet.mode())),
        );
    })
}
