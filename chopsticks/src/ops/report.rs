//! [`Report`]: the changes of a plan's steps on one host, in order.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Change, OpError};

/// The changes of several operations, in order: what a per-host plan run
/// on the agent returns. A plan that [`run`](Report::run)s its steps
/// through it keeps what the steps before a failure changed, and skips
/// the steps after it.
///
/// ```
/// use chopsticks::ops::{self, Mode, Report};
///
/// #[chopsticks::remote]
/// fn web(mode: Mode) -> Report {
///     let mut report = Report::new();
///     let conf = ops::File::new("/tmp/report-doc.conf").content("port = 80\n");
///     let changed = report.run("config", || ops::file(conf, mode)).is_some_and(|c| c.changed);
///     let reload = ops::Command::new(["true"]).changed_when(ops::ChangedWhen::Always);
///     if changed {
///         report.run("reload", || ops::command(reload, mode));
///     }
///     report
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Each operation's name (as the plan calls it) and its change.
    pub steps: Vec<(String, Change)>,
    /// The step that failed, if one did, and why; the plan's steps after
    /// it did not run.
    pub failed: Option<(String, OpError)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds one operation's change; returns it, for plans that depend on it.
    pub fn add(&mut self, name: impl Into<String>, change: Change) -> &Change {
        self.steps.push((name.into(), change));
        &self.steps[self.steps.len() - 1].1
    }

    /// Runs one operation unless an earlier one failed, and records its
    /// change or its failure. Returns the change, for steps that depend on
    /// it; `None` when it failed or did not run.
    pub fn run(
        &mut self,
        name: impl Into<String>,
        operation: impl FnOnce() -> Result<Change, OpError>,
    ) -> Option<&Change> {
        if self.failed.is_some() {
            return None;
        }
        match operation() {
            Ok(change) => Some(self.add(name, change)),
            Err(e) => {
                self.failed = Some((name.into(), e));
                None
            }
        }
    }

    /// How many operations changed something.
    pub fn changed(&self) -> usize {
        self.steps.iter().filter(|(_, c)| c.changed).count()
    }
}

impl fmt::Display for Report {
    /// One line per step (`changed` or `ok`, name, summary), each diff
    /// after its step; then the failed step, if one failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, change) in &self.steps {
            let state = if change.changed { "changed" } else { "ok" };
            writeln!(f, "{state:<8} {name}: {}", change.summary)?;
            if let Some(diff) = &change.diff {
                f.write_str(diff)?;
                if !diff.ends_with('\n') {
                    f.write_str("\n")?;
                }
            }
        }
        if let Some((name, error)) = &self.failed {
            writeln!(f, "failed   {name}: {error}")?;
        }
        Ok(())
    }
}
