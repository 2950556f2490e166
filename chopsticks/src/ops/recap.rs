//! A per-host recap of a run, as Ansible prints at its end: how many
//! operations were ok, changed or failed on each host, and which hosts
//! could not be reached. The counts only: a kit draws them (colours, exit
//! codes); `Display` is plain text.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Change, Report};
use crate::group::GroupResult;

/// One host's line of a [`Recap`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecap {
    /// The host.
    pub host: String,
    /// Operations that succeeded (changed or not).
    pub ok: usize,
    /// Of those, how many changed something.
    pub changed: usize,
    /// Operations that failed on the host.
    pub failed: usize,
    /// The host could not be reached (or was lost) at least once.
    pub unreachable: bool,
    /// Operations that did not run because an earlier one failed on the
    /// host ([`Report::skipped`]).
    #[serde(default)]
    pub skipped: usize,
    /// The run was interrupted while it worked for this host
    /// ([`interrupt`](crate::interrupt)); the step counts as failed too.
    pub interrupted: bool,
}

/// What a step of a run gives per host: one [`Change`], or a [`Report`]
/// of several.
pub trait Changes {
    /// How many operations succeeded, how many of them changed something,
    /// and how many failed.
    fn counts(&self) -> (usize, usize, usize);

    /// How many operations did not run because an earlier one failed
    /// (none by default).
    fn skipped(&self) -> usize {
        0
    }
}

impl Changes for Change {
    fn counts(&self) -> (usize, usize, usize) {
        (1, usize::from(self.changed), 0)
    }
}

impl Changes for Report {
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.steps.len(),
            self.changed(),
            usize::from(self.failed.is_some()),
        )
    }

    fn skipped(&self) -> usize {
        self.skipped.len()
    }
}

/// A transfer is one operation: changed when it wrote something.
impl Changes for crate::Transfer {
    fn counts(&self) -> (usize, usize, usize) {
        (1, usize::from(self.changed), 0)
    }
}

/// The recap of a run over a group: add each step's
/// [`GroupResult`], then print it or read it as data.
///
/// ```no_run
/// use chopsticks::ops::{self, Mode, Recap};
/// use chopsticks::Group;
///
/// # fn main() {
/// let web = Group::new(["web1", "web2"]);
/// let mut recap = Recap::new();
/// recap.add(&web.call(ops::file, (ops::File::new("/etc/motd").content("hi\n"), Mode::Apply)));
/// print!("{recap}"); // web1  ok=1  changed=1  unreachable=0  failed=0 ...
/// if recap.unreachable() || recap.failed() {
///     std::process::exit(2);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recap {
    /// One line per host, in the order hosts first appeared.
    pub hosts: Vec<HostRecap>,
}

impl Recap {
    /// An empty recap.
    pub fn new() -> Recap {
        Recap::default()
    }

    fn host(&mut self, host: &str) -> &mut HostRecap {
        let at = match self.hosts.iter().position(|h| h.host == host) {
            Some(at) => at,
            None => {
                self.hosts.push(HostRecap {
                    host: host.to_owned(),
                    ..HostRecap::default()
                });
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[at]
    }

    /// Counts one step's results, host by host.
    pub fn add<T: Changes>(&mut self, results: &GroupResult<T>) {
        for (host, result) in results.iter() {
            let line = self.host(host);
            match result {
                Ok(changes) => {
                    let (ok, changed, failed) = changes.counts();
                    line.ok += ok;
                    line.changed += changed;
                    line.failed += failed;
                    line.skipped += changes.skipped();
                }
                Err(e) => line.count_error(e),
            }
        }
    }

    /// Counts a step whose results are plain values (a fact, your own
    /// function's): each success is one ok operation, unchanged.
    pub fn add_values<T>(&mut self, results: &GroupResult<T>) {
        for (host, result) in results.iter() {
            let line = self.host(host);
            match result {
                Ok(_) => line.ok += 1,
                Err(e) => line.count_error(e),
            }
        }
    }

    /// Counts a connect pass ([`Group::connect`](crate::Group::connect)),
    /// made before a run's first step: each host gets its line, in the
    /// group's order, and a host that could not be reached is counted
    /// unreachable; a connection is no operation, so a success counts
    /// nothing.
    pub fn add_connected(&mut self, results: &GroupResult<()>) {
        for (host, result) in results.iter() {
            let line = self.host(host);
            if let Err(e) = result {
                line.count_error(e);
            }
        }
    }

    /// Whether some host could not be reached (or was lost).
    pub fn unreachable(&self) -> bool {
        self.hosts.iter().any(|h| h.unreachable)
    }

    /// Whether some operation failed on a host.
    pub fn failed(&self) -> bool {
        self.hosts.iter().any(|h| h.failed > 0)
    }

    /// Whether the run was interrupted while it worked for some host.
    pub fn interrupted(&self) -> bool {
        self.hosts.iter().any(|h| h.interrupted)
    }
}

impl HostRecap {
    fn count_error(&mut self, e: &crate::Error) {
        match e {
            e if e.is_unreachable() => self.unreachable = true,
            crate::Error::Interrupted { .. } => {
                self.interrupted = true;
                self.failed += 1;
            }
            _ => self.failed += 1,
        }
    }
}

/// One line per host, names padded to the widest:
/// `web1  ok=2  changed=1  unreachable=0  failed=0  skipped=0`.
impl fmt::Display for Recap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.hosts.iter().map(|h| h.host.len()).max().unwrap_or(0);
        for h in &self.hosts {
            writeln!(
                f,
                "{:<width$}  ok={}  changed={}  unreachable={}  failed={}  skipped={}{}",
                h.host,
                h.ok,
                h.changed,
                u8::from(h.unreachable),
                h.failed,
                h.skipped,
                if h.interrupted { "  (interrupted)" } else { "" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::ops::OpError;

    fn change(changed: bool) -> Change {
        Change {
            changed,
            ..Change::default()
        }
    }

    #[test]
    fn hosts_are_counted_and_classified() {
        let lost = Error::Connect {
            host: "db1".into(),
            message: "refused".into(),
            stderr: vec![],
        };
        let failed = Error::Controller {
            host: "web2".into(),
            function: None,
            message: "x".into(),
        };
        let mut recap = Recap::new();
        recap.add(&GroupResult::new(vec![
            ("web1".into(), Ok(change(true))),
            ("web2".into(), Err(failed)),
            ("db1".into(), Err(lost)),
        ]));
        recap.add(&GroupResult::new(vec![
            ("web1".into(), Ok(change(false))),
            ("web2".into(), Ok(change(true))),
        ]));
        let mut half = Report::new();
        half.steps = vec![("conf".into(), change(true))];
        half.failed = Some(("reload".into(), OpError::new("ops::command", "x", "exited")));
        half.skipped = vec!["restart".into(), "check".into()];
        recap.add(&GroupResult::new(vec![("web3".into(), Ok(half))]));
        let web3 = &recap.hosts[3];
        assert_eq!(
            (web3.ok, web3.changed, web3.failed, web3.skipped),
            (1, 1, 1, 2)
        );
        let web1 = &recap.hosts[0];
        assert_eq!(
            (web1.ok, web1.changed, web1.failed, web1.unreachable),
            (2, 1, 0, false)
        );
        assert_eq!((recap.hosts[1].ok, recap.hosts[1].failed), (1, 1));
        assert!(recap.hosts[2].unreachable);
        assert!(recap.unreachable() && recap.failed());
        let text = recap.to_string();
        assert!(
            text.starts_with("web1  ok=2  changed=1  unreachable=0  failed=0  skipped=0\n"),
            "{text}"
        );
        assert!(
            text.contains("db1   ok=0  changed=0  unreachable=1  failed=0"),
            "{text}"
        );
        assert!(
            text.contains("web3  ok=1  changed=1  unreachable=0  failed=1  skipped=2"),
            "{text}"
        );
        // A connect pass: every host gets its line, in order; only errors count.
        let mut connect = Recap::new();
        let lost = Error::Connect {
            host: "b".into(),
            message: "refused".into(),
            stderr: vec![],
        };
        connect.add_connected(&GroupResult::new(vec![
            ("a".into(), Ok(())),
            ("b".into(), Err(lost)),
        ]));
        let hosts: Vec<_> = connect
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.ok, h.unreachable))
            .collect();
        assert_eq!(hosts, [("a", 0, false), ("b", 0, true)]);
    }
}
