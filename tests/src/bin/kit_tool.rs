//! A kit tool for the kit's own tests (`tests/tests/hosts/kit.rs`): on
//! each host, step `put` sends `--content` to `DIR/put.txt` (a transfer,
//! reported as a change), step `fetch` fetches it back to
//! `HERE/{host}/put.txt` and reports its size (a value, through
//! `GroupResult::map`), step `plan` runs a plan of three steps whose
//! second fails with `--fail` (the third is then skipped), and step
//! `kernel` reads the kernel's name. Each step says on stderr which hosts
//! it was given (`step STEP on HOST,HOST`).
//!
//! `kit_tool -H HOSTS --dir DIR --here HERE --content TEXT [--fail]`

use chopsticks::ops::{self, Mode, OpError, Report};
use chopsticks::{facts, remote};
use chopsticks_cli::{ExitCode, Fleet};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
    /// The directory on the hosts
    #[arg(long)]
    dir: String,
    /// The directory here the fetches go to
    #[arg(long)]
    here: String,
    /// What the file put holds
    #[arg(long, default_value = "hello")]
    content: String,
    /// The plan's second step fails
    #[arg(long)]
    fail: bool,
}

/// Three files, in order; the second step fails when `fail`.
#[remote]
fn plan(dir: String, fail: bool, mode: Mode) -> Report {
    let mut report = Report::new();
    let file = |name: &str| ops::File::new(format!("{dir}/{name}")).content(format!("{name}\n"));
    report.run("first", || ops::file(file("first"), mode));
    report.run("second", || match fail {
        true => Err(OpError::new("kit_tool", "second", "fails on purpose")),
        false => ops::file(file("second"), mode),
    });
    report.run("third", || ops::file(file("third"), mode));
    report
}

#[chopsticks::main]
fn main() -> ExitCode {
    let cli: Cli = chopsticks_cli::parse();
    cli.fleet.run(|hosts, _selection, out| {
        let given = |step: &str| {
            let names: Vec<&str> = hosts.hosts().collect();
            eprintln!("step {step} on {}", names.join(","));
        };
        let mode = cli.fleet.mode();
        given("put");
        let target = format!("{}/put.txt", cli.dir);
        let content = chopsticks::Source::bytes(cli.content.as_bytes());
        out.changes("put", &hosts.put(content, &target).run());
        given("fetch");
        let here = format!("{}/{{host}}/put.txt", cli.here);
        let fetched = hosts.fetch(&target, &here).run();
        out.step("fetch", &fetched.map(|t| t.bytes));
        given("plan");
        out.changes("plan", &hosts.call(plan, (cli.dir.clone(), cli.fail, mode)));
        given("kernel");
        out.step("kernel", &hosts.call(facts::kernel, ()));
    })
}
