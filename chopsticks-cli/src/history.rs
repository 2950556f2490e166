//! `TOOL --history` and `TOOL --history HOST`: the journal read back,
//! newest first.

use std::fmt::Write as _;

use crate::journal::{Journal, Run};

/// How many runs `--history` shows.
pub const HISTORY_RUNS: usize = 20;

/// The newest runs, one line each: start (UTC), how long, exit code, how
/// the hosts went (`would change=` for a check run's changes), the
/// command line.
///
/// ```text
/// 2026-12-07T08:13:19.123Z     2.4s  exit 2  ok=1 changed=1 failed=1 unreachable=0  motd -H web[1:3]
/// ```
pub fn runs(runs: &[Run]) -> String {
    let mut out = String::new();
    for run in runs {
        let hosts = run.hosts();
        let count = |states: &[&str]| hosts.iter().filter(|(_, s)| states.contains(s)).count();
        let _ = writeln!(
            out,
            "{}  {:>7}  exit {:<3}  ok={} {}={} failed={} unreachable={}  {}",
            run.start,
            took(run.seconds),
            run.exit,
            count(&["ok"]),
            changed_word(run),
            count(&["changed"]),
            count(&["failed", "interrupted", "skipped"]),
            count(&["unreachable"]),
            command(run),
        );
        if let Some(note) = &run.note {
            let _ = writeln!(out, "  ({})", chopsticks::printable(note));
        }
    }
    out
}

/// `changed`, or `would change` in a check run.
fn changed_word(run: &Run) -> &'static str {
    match run.check {
        true => "would change",
        false => "changed",
    }
}

/// Whether `run` changed something on `host`, or failed there.
pub fn eventful(run: &Run, host: &str) -> bool {
    run.steps
        .iter()
        .any(|s| s.host == host && (s.changed || s.status != "ok"))
}

/// What changed on `host`, run by run: each run's start and command
/// line, then the host's steps that changed (`would change` in a check
/// run) or failed (with their diffs when `diff`), or how many steps found
/// nothing to change.
pub fn host(runs: &[Run], host: &str, diff: bool) -> String {
    let mut out = String::new();
    for run in runs {
        let _ = writeln!(out, "{}  {}  (exit {})", run.start, command(run), run.exit);
        if let Some(note) = &run.note {
            let _ = writeln!(out, "  ({})", chopsticks::printable(note));
        }
        let steps: Vec<_> = run.steps.iter().filter(|s| s.host == host).collect();
        let shown: Vec<_> = steps
            .iter()
            .filter(|s| s.changed || s.status != "ok")
            .collect();
        if shown.is_empty() {
            let _ = writeln!(
                out,
                "  ok           nothing changed ({} steps)",
                steps.len()
            );
        }
        for step in shown {
            let took = step
                .ms
                .map(|ms| format!("  ({})", took(ms / 1e3)))
                .unwrap_or_default();
            let text = format!("{}: {}{took}", step.step, step.summary);
            let status = match step.status.as_str() {
                "changed" => changed_word(run),
                other => other,
            };
            let _ = writeln!(out, "  {status:<11}  {}", chopsticks::printable(&text));
            if let (true, Some(d)) = (diff, &step.diff) {
                for line in d.lines() {
                    let _ = writeln!(out, "      {}", chopsticks::printable(line));
                }
            }
        }
    }
    out
}

/// The history as the kit prints it, newest first: the last
/// [`HISTORY_RUNS`] runs; with `host`, the last [`HISTORY_RUNS`] runs that
/// changed something on it or failed there (see [`eventful`]), and how
/// many runs in between found nothing to change.
///
/// # Errors
/// The journal cannot be read.
pub fn show(journal: &Journal, host: Option<&str>, diff: bool) -> std::io::Result<String> {
    let mut quiet = 0;
    let found = match host {
        Some(h) => journal.runs_where(Some(h), HISTORY_RUNS, |run| {
            let keep = eventful(run, h);
            quiet += usize::from(!keep);
            keep
        })?,
        None => journal.runs(None, HISTORY_RUNS)?,
    };
    let mut text = match host {
        Some(h) => self::host(&found, h, diff),
        None => runs(&found),
    };
    if quiet > 0 {
        let _ = writeln!(
            text,
            "({quiet} more runs on {} found nothing to change: not shown)",
            host.unwrap_or_default()
        );
    }
    Ok(match (found.is_empty() && quiet == 0, host) {
        (false, _) => text,
        (true, Some(h)) => format!("no run on {h} in {}\n", journal.path().display()),
        (true, None) => format!("no run in {}\n", journal.path().display()),
    })
}

/// `seconds` as `850ms`, `2.4s`, `3m05s`.
pub fn took(seconds: f64) -> String {
    match seconds {
        s if s < 1.0 => format!("{:.0}ms", s * 1e3),
        s if s < 60.0 => format!("{s:.1}s"),
        s => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
    }
}

/// The run's command line, printable, arguments with blanks or quotes
/// quoted.
fn command(run: &Run) -> String {
    let mut line = run.tool.clone();
    for arg in &run.args {
        line.push(' ');
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+[]*&!~^".contains(c));
        match plain {
            true => line.push_str(arg),
            false => line.push_str(&format!("'{}'", arg.replace('\'', r"'\''"))),
        }
    }
    chopsticks::printable(&line).into_owned()
}
