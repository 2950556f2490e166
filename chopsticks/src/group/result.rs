//! `GroupResult`: one result per host, in the group's order.

use std::fmt;

use crate::error::{Error, Result};

/// The results of a [`Group::call`](crate::Group::call): one per host, in the
/// group's host order. One host's failure never affects another's result.
///
/// ```no_run
/// # use chopsticks::{facts, Group};
/// # #[chopsticks::main] fn main() {
/// let results = Group::new(["web1", "web2"]).call(facts::kernel, ());
/// for (host, kernel) in results.successful() {
///     println!("{host}: {kernel}");
/// }
/// for (host, error) in results.failures() {
///     eprintln!("{host} failed: {error}");
/// }
/// # }
/// ```
#[derive(Debug)]
#[must_use = "each host's result is lost unless it is looked at"]
pub struct GroupResult<R> {
    results: Vec<(String, Result<R>)>,
}

impl<R> GroupResult<R> {
    pub(crate) fn new(results: Vec<(String, Result<R>)>) -> Self {
        GroupResult { results }
    }

    /// `(host, result)` for every host, in the group's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<R>)> {
        self.results.iter().map(|(h, r)| (h.as_str(), r))
    }

    /// The result of `host`, if it is in the group.
    pub fn get(&self, host: &str) -> Option<&Result<R>> {
        self.results.iter().find(|(h, _)| h == host).map(|(_, r)| r)
    }

    /// `(host, value)` for the hosts that succeeded.
    pub fn successful(&self) -> impl Iterator<Item = (&str, &R)> {
        self.results
            .iter()
            .filter_map(|(h, r)| r.as_ref().ok().map(|v| (h.as_str(), v)))
    }

    /// `(host, error)` for the hosts that failed.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Error)> {
        self.results
            .iter()
            .filter_map(|(h, r)| r.as_ref().err().map(|e| (h.as_str(), e)))
    }

    /// Whether every host succeeded.
    pub fn is_ok(&self) -> bool {
        self.results.iter().all(|(_, r)| r.is_ok())
    }

    /// How many hosts there are.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the group was empty.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Each host's value passed through `f`, errors kept: a step's results
    /// made into what is reported or passed on, one host at a time, in the
    /// same order.
    ///
    /// ```no_run
    /// # use chopsticks::{facts, Group};
    /// # #[chopsticks::main] fn main() {
    /// let group = Group::new(["web1", "web2"]);
    /// let sizes = group.fetch("/etc/hosts", "fetched/{host}/hosts").run().map(|t| t.bytes);
    /// for (host, bytes) in sizes.successful() {
    ///     println!("{host}: {bytes} bytes");
    /// }
    /// # }
    /// ```
    pub fn map<U>(self, mut f: impl FnMut(R) -> U) -> GroupResult<U> {
        let results = self.results.into_iter();
        GroupResult::new(results.map(|(h, r)| (h, r.map(&mut f))).collect())
    }

    /// Each host's error passed through `f`, values kept: an error
    /// reworded for the host it is on (`f` gets the host's name too), or
    /// made into another [`Error`].
    ///
    /// ```
    /// # use chopsticks::{Error, GroupResult};
    /// # fn reworded(results: GroupResult<String>) -> GroupResult<String> {
    /// results.map_err(|host, e| Error::Config {
    ///     host: host.to_owned(),
    ///     message: format!("no kernel to report: {e}"),
    /// })
    /// # }
    /// ```
    pub fn map_err(self, mut f: impl FnMut(&str, Error) -> Error) -> GroupResult<R> {
        let results = self.results.into_iter();
        let mapped = results.map(|(h, r)| {
            let r = r.map_err(|e| f(&h, e));
            (h, r)
        });
        GroupResult::new(mapped.collect())
    }

    /// The values of all hosts, or a [`GroupError`] that lists every failed
    /// host and why.
    ///
    /// # Errors
    /// When at least one host failed.
    pub fn raise_failures(self) -> Result<Vec<(String, R)>, GroupError> {
        let total = self.results.len();
        let (ok, failed): (Vec<_>, Vec<_>) = self.results.into_iter().partition(|(_, r)| r.is_ok());
        if failed.is_empty() {
            return Ok(ok
                .into_iter()
                .filter_map(|(h, r)| r.ok().map(|v| (h, v)))
                .collect());
        }
        Err(GroupError {
            total,
            unit: "hosts",
            failures: failed
                .into_iter()
                .filter_map(|(h, r)| r.err().map(|e| (h, e)))
                .collect(),
        })
    }
}

impl<R> IntoIterator for GroupResult<R> {
    type Item = (String, Result<R>);
    type IntoIter = std::vec::IntoIter<(String, Result<R>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.results.into_iter()
    }
}

impl<'a, R> IntoIterator for &'a GroupResult<R> {
    type Item = (&'a str, &'a Result<R>);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a Result<R>)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Some hosts of a group (or calls of a [`Queue`](crate::Queue)) failed:
/// each with its host and error. `Debug` prints the same text as `Display`.
pub struct GroupError {
    total: usize,
    /// What `total` counts: "hosts" or "calls".
    unit: &'static str,
    failures: Vec<(String, Error)>,
}

impl GroupError {
    /// Failed calls of a queue, out of `total` calls.
    pub(crate) fn of_calls(total: usize, failures: Vec<(String, Error)>) -> Self {
        GroupError {
            total,
            unit: "calls",
            failures,
        }
    }

    /// `(host, error)` for every failure, in the group's order.
    pub fn failures(&self) -> &[(String, Error)] {
        &self.failures
    }

    /// The failures, by value.
    pub fn into_failures(self) -> Vec<(String, Error)> {
        self.failures
    }
}

impl fmt::Debug for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<&str> = self.failures.iter().map(|(h, _)| h.as_str()).collect();
        hosts.dedup();
        write!(
            f,
            "{} of {} {} failed ({})",
            self.failures.len(),
            self.total,
            self.unit,
            hosts.join(", ")
        )?;
        for (_, error) in &self.failures {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failures.first().map(|(_, e)| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeout(host: &str) -> Error {
        Error::Timeout {
            host: host.into(),
            function: "m::f",
            after: Duration::from_secs(1),
        }
    }

    #[test]
    fn results_split_into_successes_and_failures() {
        let r = GroupResult::new(vec![
            ("a".into(), Ok(1)),
            ("b".into(), Err(timeout("b"))),
            ("c".into(), Ok(3)),
        ]);
        assert_eq!(r.successful().collect::<Vec<_>>(), [("a", &1), ("c", &3)]);
        assert_eq!(r.failures().map(|(h, _)| h).collect::<Vec<_>>(), ["b"]);
        assert!(matches!(r.get("c"), Some(Ok(3))));
        assert!(r.get("zz").is_none());
        assert!(!r.is_ok());
        let err = r.raise_failures().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("1 of 3 hosts failed (b)\n  b: `m::f` timed out"),
            "{text}"
        );
    }

    /// `map` changes values and keeps errors, `map_err` the reverse; both
    /// keep the hosts and their order.
    #[test]
    fn map_and_map_err_keep_hosts_and_order() {
        let r = GroupResult::new(vec![
            ("a".into(), Ok(1)),
            ("b".into(), Err(timeout("b"))),
            ("c".into(), Ok(3)),
        ]);
        let doubled = r.map(|v| v * 2);
        assert_eq!(
            doubled.successful().collect::<Vec<_>>(),
            [("a", &2), ("c", &6)]
        );
        assert!(matches!(doubled.get("b"), Some(Err(Error::Timeout { .. }))));
        let mut seen = Vec::new();
        let reworded = doubled.map_err(|host, e| {
            seen.push(host.to_owned());
            Error::Config {
                host: host.to_owned(),
                message: format!("reworded: {e}"),
            }
        });
        assert_eq!(seen, ["b"]);
        let hosts: Vec<&str> = reworded.iter().map(|(h, _)| h).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert!(matches!(reworded.get("a"), Some(Ok(2))));
        match reworded.get("b") {
            Some(Err(e @ Error::Config { .. })) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("b: reworded: b: `m::f` timed out"),
                    "{text}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn all_ok_raises_nothing() {
        let r = GroupResult::new(vec![("a".into(), Ok(1)), ("b".into(), Ok(2))]);
        assert_eq!(
            r.raise_failures().unwrap(),
            [("a".to_owned(), 1), ("b".to_owned(), 2)]
        );
    }
}
