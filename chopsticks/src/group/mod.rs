//! `Group`: fan a call out to many hosts, with one result per host.

mod algebra;
mod fan_out;
mod member;
mod progress;
mod queue;
mod result;

use chopsticks_agent::sync::Unpoisoned;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use member::Host;
pub(crate) use member::Member;
pub(crate) use queue::Place;
pub use queue::{Queue, QueueTarget, Queued};
pub use result::{GroupError, GroupResult};

use crate::error::{Error, Result};
use crate::tunnel::{Tunnel, TunnelBuilder};
use crate::RemoteFn;
use progress::Progress;

/// How many hosts connect at once, by default.
pub const DEFAULT_FORKS: usize = 64;

/// A set of hosts to call at once, with one result per host.
///
/// Hosts connect lazily, on first use, in parallel, at most
/// [`forks`](Group::forks) at a time, and stay connected for the group's
/// life (a host whose agent went away reconnects on its next call).
///
/// ```no_run
/// use chopsticks::{facts, Group};
/// use std::time::Duration;
///
/// #[chopsticks::main]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let web = Group::new(["web1", "web2", "web3"])
///         .configure(|b| b.user("deploy"))
///         .call_timeout(Duration::from_secs(30));
///     for (host, kernel) in web.call(facts::kernel, ()).raise_failures()? {
///         println!("{host}: {kernel}");
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Group {
    members: Vec<Arc<Member>>,
    forks: usize,
    call_timeout: Option<Duration>,
    progress: bool,
}

/// A tunnel is a group of one.
impl From<Tunnel> for Group {
    fn from(tunnel: Tunnel) -> Group {
        Group::new([tunnel])
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("hosts", &self.hosts().collect::<Vec<_>>())
            .field("forks", &self.forks)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Group {
    /// A group of these hosts, in this order (a repeated name counts once).
    /// Nothing connects until the group is used.
    pub fn new<I>(hosts: I) -> Group
    where
        I: IntoIterator,
        I::Item: Into<Host>,
    {
        let mut seen = HashSet::new();
        let members = hosts
            .into_iter()
            .map(|h| h.into().0)
            .filter(|m| seen.insert(m.name.clone()))
            .map(Arc::new)
            .collect();
        Group {
            members,
            forks: DEFAULT_FORKS,
            call_timeout: None,
            progress: true,
        }
    }

    /// Applies `f` to the builder of every host not connected yet, e.g.
    /// `.configure(|b| b.ssh_config(path).connect_timeout(d))`.
    pub fn configure(mut self, f: impl Fn(TunnelBuilder) -> TunnelBuilder) -> Group {
        self.members = std::mem::take(&mut self.members)
            .into_iter()
            .map(|m| match &m.builder {
                Some(b) if m.tunnel.lock().unpoisoned().is_none() => Arc::new(Member {
                    name: m.name.clone(),
                    builder: Some(f(b.clone())),
                    tunnel: Mutex::new(None),
                }),
                _ => m,
            })
            .collect();
        self
    }

    /// At most `forks` hosts connect at once (default [`DEFAULT_FORKS`]).
    pub fn forks(mut self, forks: usize) -> Group {
        self.forks = forks.max(1);
        self
    }

    /// Bounds how long [`call`](Group::call) waits for each host's result,
    /// counted from when its call was sent; a host that misses it fails with
    /// [`Error::Timeout`] (its call is cancelled there; the tunnel stays
    /// usable). The connect timeout is separate: see
    /// [`TunnelBuilder::connect_timeout`] and [`configure`](Group::configure).
    pub fn call_timeout(mut self, timeout: Duration) -> Group {
        self.call_timeout = Some(timeout);
        self
    }

    /// Shows a progress line on stderr during group calls where stderr
    /// takes one (a terminal: see [`Color`](crate::Color) and
    /// [`show_progress`](crate::show_progress)), the default; `false` turns
    /// it off for this group.
    pub fn progress(mut self, show: bool) -> Group {
        self.progress = show;
        self
    }

    /// The host names, in order.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// How many hosts there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no host.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `host` is in the group.
    pub fn contains(&self, host: &str) -> bool {
        self.members.iter().any(|m| m.name == host)
    }

    /// Connects every host that is not connected yet.
    pub fn connect(&self) -> GroupResult<()> {
        let results = self.fan_out("connecting", |_, m| m.tunnel().map(drop));
        GroupResult::new(results)
    }

    /// The connected tunnel of every host (connecting those that are not).
    pub fn tunnels(&self) -> GroupResult<Arc<Tunnel>> {
        GroupResult::new(self.fan_out("connecting", |_, m| m.tunnel()))
    }

    /// Calls `f` on every host at once and waits for all of them.
    ///
    /// Results come in the group's host order; a host that cannot be
    /// reached, fails, panics or times out has its own error and does not
    /// affect the others.
    pub fn call<F>(&self, f: F, args: F::Args) -> GroupResult<F::Output>
    where
        F: RemoteFn,
        F::Args: Clone + Sync,
    {
        self.call_each(f, |_| args.clone())
    }

    /// Calls `f` on every host at once with the arguments `args(host)`
    /// gives for it (a host's own settings, from an inventory), and waits
    /// for all of them; as [`call`](Group::call) otherwise.
    ///
    /// ```no_run
    /// use chopsticks::{ops, Group};
    /// use chopsticks::ops::Mode;
    ///
    /// # fn main() {
    /// let web = Group::new(["web1", "web2"]);
    /// let motds = web.call_each(ops::file, |host| {
    ///     (ops::File::new("/etc/motd").content(format!("this is {host}\n")), Mode::Apply)
    /// });
    /// # }
    /// ```
    pub fn call_each<F>(
        &self,
        f: F,
        args: impl Fn(&str) -> F::Args + Sync,
    ) -> GroupResult<F::Output>
    where
        F: RemoteFn,
    {
        raise_fd_limit();
        let progress = Progress::new(F::NAME, self.members.len(), self.progress);
        // Connect and send, `forks` hosts at a time; a host whose call is
        // sent is done with its thread.
        let sent = self.on_threads(self.forks, |_, m| {
            let tunnel = m.tunnel()?;
            let mut pending = tunnel.call_now(f, args(&m.name));
            if let Some(timeout) = self.call_timeout {
                pending.set_timeout_from(Instant::now(), timeout);
            }
            Ok((pending, tunnel))
        });
        // ... then wait for all of them here, as each completes.
        let mut results: Vec<Option<Result<F::Output>>> = Vec::with_capacity(sent.len());
        let mut calls = Vec::with_capacity(sent.len());
        let mut tunnels = Vec::with_capacity(sent.len());
        for sent in sent {
            match sent {
                Ok((pending, tunnel)) => {
                    results.push(None);
                    calls.push(Some(pending));
                    tunnels.push(Some(tunnel));
                }
                Err(e) => {
                    progress.host_done(false);
                    results.push(Some(Err(e)));
                    calls.push(None);
                    tunnels.push(None);
                }
            }
        }
        fan_out::collect(calls, |i, result| {
            if let (Err(Error::Disconnected { .. }), Some(tunnel)) = (&result, &tunnels[i]) {
                self.members[i].forget_tunnel(tunnel);
            }
            progress.host_done(result.is_ok());
            results[i] = Some(result);
        });
        progress.finish();
        let results = results.into_iter().zip(&self.members).map(|(result, m)| {
            let result = result.unwrap_or_else(|| {
                Err(Error::Controller {
                    host: m.name.clone(),
                    function: Some(F::NAME),
                    message: "the call's result was lost".into(),
                })
            });
            (m.name.clone(), result)
        });
        GroupResult::new(results.collect())
    }

    /// The hosts where the `#[remote]` predicate `f` returned `true`. Hosts
    /// where it failed are left out; [`call`](Group::call) it to see why.
    pub fn filter<F>(&self, f: F, args: F::Args) -> Group
    where
        F: RemoteFn<Output = bool>,
        F::Args: Clone + Sync,
    {
        let results = self.call(f, args);
        let keep: HashSet<&str> = results
            .successful()
            .filter(|(_, keep)| **keep)
            .map(|(h, _)| h)
            .collect();
        self.retain(|m| keep.contains(m.name.as_str()))
    }

    /// This group without the hosts that failed in `results` (of a
    /// [`connect`](Group::connect), [`call`](Group::call) ... on it or on a
    /// group sharing its hosts), sharing its connections. A host that could
    /// not be connected is otherwise tried again by every call, each try
    /// bounded by the connect timeout; this drops it for the rest of a run:
    ///
    /// ```no_run
    /// # let web = chopsticks::Group::new(["web1", "web2"]);
    /// let connected = web.connect();
    /// for (_host, error) in connected.failures() {
    ///     eprintln!("skipped: {error}");
    /// }
    /// let web = web.without_failures(&connected);
    /// ```
    pub fn without_failures<T>(&self, results: &GroupResult<T>) -> Group {
        let failed: HashSet<&str> = results.failures().map(|(host, _)| host).collect();
        self.retain(|m| !failed.contains(m.name.as_str()))
    }

    /// The hosts whose names `keep` accepts, in this group's order,
    /// sharing its connections and settings.
    pub fn select(&self, keep: impl Fn(&str) -> bool) -> Group {
        self.retain(|m| keep(&m.name))
    }

    /// This group cut into consecutive groups of at most `size` hosts (at
    /// least 1), in order, sharing its connections and settings: for
    /// rolling work, one batch after another.
    pub fn batches(&self, size: usize) -> Vec<Group> {
        self.members
            .chunks(size.max(1))
            .map(|chunk| Group {
                members: chunk.to_vec(),
                ..self.settings()
            })
            .collect()
    }

    /// A group of no hosts with this group's settings.
    fn settings(&self) -> Group {
        Group {
            members: Vec::new(),
            forks: self.forks,
            call_timeout: self.call_timeout,
            progress: self.progress,
        }
    }

    fn retain(&self, keep: impl Fn(&Member) -> bool) -> Group {
        Group {
            members: self.members.iter().filter(|m| keep(m)).cloned().collect(),
            ..self.settings()
        }
    }

    /// The bound of each host's call ([`call_timeout`](Group::call_timeout)).
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// Runs `job(index, member)` for every member on at most `forks`
    /// threads, with a progress line; results in member order.
    pub(crate) fn fan_out<T: Send>(
        &self,
        what: &'static str,
        job: impl Fn(usize, &Member) -> Result<T> + Sync,
    ) -> Vec<(String, Result<T>)> {
        raise_fd_limit();
        let progress = Progress::new(what, self.members.len(), self.progress);
        let results = self.on_threads(self.forks, |i, m| {
            let result = job(i, m);
            progress.host_done(result.is_ok());
            result
        });
        progress.finish();
        self.members
            .iter()
            .map(|m| m.name.clone())
            .zip(results)
            .collect()
    }

    /// Runs `job(index, member)` for every member on at most `workers`
    /// threads; results in member order. A panicking job fails its host
    /// only.
    fn on_threads<T: Send>(
        &self,
        workers: usize,
        job: impl Fn(usize, &Member) -> Result<T> + Sync,
    ) -> Vec<Result<T>> {
        fan_out::on_threads(
            self.members.len(),
            workers,
            |i| job(i, &self.members[i]),
            |i, message| Error::Controller {
                host: self.members[i].name.clone(),
                function: None,
                message: format!("this program panicked while working for this host: {message}"),
            },
        )
    }
}

/// Dropping a group closes the tunnels no other group or queue shares, all
/// at once: N hosts that do not answer take one close bound, not N.
impl Drop for Group {
    fn drop(&mut self) {
        let mut closing = Vec::new();
        for member in std::mem::take(&mut self.members) {
            let tunnel = Arc::into_inner(member).and_then(|m| m.tunnel.into_inner().unpoisoned());
            if let Some(tunnel) = tunnel.and_then(Arc::into_inner) {
                tunnel.begin_close();
                closing.push(tunnel);
            }
        }
        let deadline = Instant::now() + crate::tunnel::CLOSE_GRACE;
        for tunnel in &closing {
            tunnel.finish_close_by(deadline);
        }
    }
}

/// Each tunnel holds a few descriptors; big groups need more than the usual
/// soft limit of 1024. Raised to the hard limit once, and logged (at info),
/// since it is the whole program's limit.
fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                let was = limit.rlim_cur;
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    // It is the whole program's limit: say so.
                    log::info!(
                        "raised this program's open-file limit (RLIMIT_NOFILE) from {was} to \
                         its hard limit {} for group work",
                        limit.rlim_max
                    );
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &Group) -> Vec<&str> {
        g.hosts().collect()
    }

    #[test]
    fn set_algebra_keeps_the_left_order() {
        let a = Group::new(["a", "b", "c"]);
        let b = Group::new(["c", "d", "a"]);
        assert_eq!(names(&(&a | &b)), ["a", "b", "c", "d"]);
        assert_eq!(names(&(&a & &b)), ["a", "c"]);
        assert_eq!(names(&(&a - &b)), ["b"]);
        assert_eq!(names(&(&a ^ &b)), ["b", "d"]);
        assert_eq!(names(&(a | b)), ["a", "b", "c", "d"]);
    }

    #[test]
    fn batches_and_selections_keep_the_order_and_the_settings() {
        let g = Group::new(["a", "b", "c", "d", "e"]).forks(3);
        let batches = g.batches(2);
        let hosts: Vec<Vec<&str>> = batches.iter().map(names).collect();
        assert_eq!(hosts, [vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
        assert!(batches.iter().all(|b| b.forks == 3));
        assert_eq!(g.batches(0).len(), 5, "a size of 0 means 1");
        assert_eq!(g.batches(9).len(), 1);
        assert_eq!(names(&g.select(|h| h != "b" && h != "e")), ["a", "c", "d"]);
    }

    #[test]
    fn repeated_hosts_count_once() {
        let g = Group::new(["a", "b", "a"]);
        assert_eq!(names(&g), ["a", "b"]);
        assert!(g.contains("b") && !g.contains("z"));
    }

    #[test]
    fn progress_is_silent_when_not_a_terminal() {
        // Under the test harness stderr is captured or a pipe.
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            assert!(!Progress::new("x", 10, true).enabled());
        }
        assert!(!Progress::new("x", 10, false).enabled());
        assert!(!Progress::new("x", 1, true).enabled());
    }
}
