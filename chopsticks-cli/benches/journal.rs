//! The run journal at 10,000 runs: `cargo bench -p chopsticks-cli --bench
//! journal`. Writes 10,000 realistic runs (5 hosts, 4 steps each, a diff
//! where a step changed, a host unreachable now and then) through
//! `Journal::append`, as the kit does at each run's end (the journal
//! turns at 16 MiB as it grows), then times reading them back as
//! `--history` does: the newest 20 runs, all 10,000 runs read and listed,
//! `--history HOST` for a host in every run and for one in none (every
//! line looked at); beside the floor of reading the same files raw and
//! counting their lines (`wc -l`). Target: every reading within 1 s
//! (release).

use std::io::Read;
use std::time::{Duration, Instant};

use chopsticks_cli::history;
use chopsticks_cli::journal::{Journal, Run, Step};

const RUNS: usize = 10_000;
const HOSTS: usize = 5;
const STEPS: [&str; 4] = ["packages", "config", "service", "motd"];

fn run(n: usize) -> Run {
    let mut run = Run::new(
        "deploy",
        [
            "-i",
            "inventory.ini",
            "-l",
            "web",
            "--diff",
            &format!("--release={n}"),
        ],
    );
    for h in 0..HOSTS {
        let host = format!("web{h}.example.org");
        if (n + h).is_multiple_of(97) {
            run.steps.push(Step::new(
                &host,
                "packages",
                "unreachable",
                "ssh: connect to host: Connection refused",
            ));
            continue;
        }
        for (s, step) in STEPS.iter().enumerate() {
            let changed = (n + h + s).is_multiple_of(7);
            let status = if changed { "changed" } else { "ok" };
            let summary = match changed {
                true => format!("/etc/app/{step}.conf: content changed (release {n})"),
                false => format!("/etc/app/{step}.conf: in place, 0644 root:root"),
            };
            let diff = changed.then(|| {
                format!(
                    "--- /etc/app/{step}.conf\n+++ /etc/app/{step}.conf\n@@ -1,3 +1,3 @@\n \
                     [server]\n-release = {}\n+release = {n}\n port = 8080\n",
                    n.saturating_sub(1)
                )
            });
            let took = Duration::from_micros(((n * 31 + h * 17 + s * 7) % 5000) as u64 * 100);
            run.steps.push(
                Step::new(&host, &format!("site/{step}"), status, &summary)
                    .diff(diff.as_deref())
                    .duration(Some(took)),
            );
        }
    }
    run.end(0);
    run
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = std::env::temp_dir().join(format!("cs-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = Journal::new(&dir);
    let start = Instant::now();
    for n in 0..RUNS {
        journal.append(&run(n)).expect("appends");
    }
    let wrote = start.elapsed();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the journal's directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).expect("a file").len())
        .sum();
    println!(
        "journal bench: {RUNS} runs of {HOSTS} hosts x {} steps written in {:.0} ms \
         ({:.1} MiB in {} files)",
        STEPS.len(),
        ms(wrote),
        bytes as f64 / f64::from(1 << 20),
        files.len()
    );

    // The floor: the same bytes read raw, lines counted.
    let start = Instant::now();
    let mut lines = 0;
    for path in &files {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .expect("reads");
        lines += bytes.iter().filter(|&&b| b == b'\n').count();
    }
    let floor = start.elapsed();
    println!(
        "  {:<42} {lines:>6} lines   {:>7.1} ms",
        "floor: read raw, count lines",
        ms(floor)
    );

    let timed = |what: &str, read: &dyn Fn() -> (usize, usize)| {
        let start = Instant::now();
        let (runs, text) = read();
        let took = start.elapsed();
        println!(
            "  {what:<42} {runs:>6} runs    {:>7.1} ms  ({:.1}x the floor; {text} bytes shown; target 1000 ms)",
            ms(took),
            took.as_secs_f64() / floor.as_secs_f64().max(1e-9),
        );
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    };
    timed("--history (newest 20)", &|| {
        let text = history::show(&journal, None, false).expect("reads");
        (text.lines().count(), text.len())
    });
    timed("all runs read and listed", &|| {
        let runs = journal.runs(None, usize::MAX).expect("reads");
        (runs.len(), history::runs(&runs).len())
    });
    timed("--history web3.example.org --diff (20)", &|| {
        let runs = journal.runs(Some("web3.example.org"), 20).expect("reads");
        (
            runs.len(),
            history::host(&runs, "web3.example.org", true).len(),
        )
    });
    timed("every run of web3.example.org --diff", &|| {
        let runs = journal
            .runs(Some("web3.example.org"), usize::MAX)
            .expect("reads");
        (
            runs.len(),
            history::host(&runs, "web3.example.org", true).len(),
        )
    });
    timed("--history of a host in no run", &|| {
        let runs = journal.runs(Some("db1.example.org"), 20).expect("reads");
        (runs.len(), 0)
    });
    std::fs::remove_dir_all(dir).expect("removes the scratch directory");
}
