//! `Queue`: per-host FIFO queues of calls; hosts proceed independently.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{lock, Group, GroupError, Member};
use crate::error::{Error, Result};
use crate::files::{self, Source};
use crate::tunnel::Tunnel;
use crate::{FileOptions, RemoteFn, Transfer};

/// What a queued put or fetch is called in reports.
const PUT: &str = "chopsticks::Tunnel::put";
const FETCH: &str = "chopsticks::Tunnel::fetch";

/// One queued call: run on the host's tunnel (or fail with why there is
/// none); returns its error, if any.
type Job<'a> = Box<dyn FnOnce(std::result::Result<&Tunnel, &Error>) -> Option<Error> + Send + 'a>;

/// Calls queued per host, run in order on each host while hosts proceed
/// independently: a slow or failing host does not hold up the others.
///
/// ```no_run
/// use chopsticks::{facts, Group, Queue};
///
/// #[chopsticks::main]
/// fn main() -> Result<(), chopsticks::GroupError> {
///     let web = Group::new(["web1", "web2"]);
///     let mut queue = Queue::new();
///     for (host, kernel) in queue.call_group(&web, facts::kernel, ()) {
///         kernel.then(move |r| println!("{host}: {r:?}"));
///     }
///     queue.call_group(&web, facts::uptime, ()); // runs after kernel, per host
///     queue.run()
/// }
/// ```
pub struct Queue<'a> {
    hosts: Vec<HostQueue<'a>>,
    forks: usize,
}

struct HostQueue<'a> {
    name: String,
    target: Target<'a>,
    jobs: Vec<Job<'a>>,
}

enum Target<'a> {
    Tunnel(&'a Tunnel),
    /// A group's host.
    Member(Arc<Member>),
}

impl Target<'_> {
    fn same(&self, other: &Target<'_>) -> bool {
        match (self, other) {
            (Target::Tunnel(a), Target::Tunnel(b)) => std::ptr::eq(*a, *b),
            (Target::Member(a), Target::Member(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Queue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field(
                "hosts",
                &self
                    .hosts
                    .iter()
                    .map(|h| (&h.name, h.jobs.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Queue<'_> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<'a> Queue<'a> {
    /// An empty queue.
    pub fn new() -> Self {
        Queue {
            hosts: Vec::new(),
            forks: super::DEFAULT_FORKS,
        }
    }

    /// At most `forks` hosts run at once (default [`DEFAULT_FORKS`](super::DEFAULT_FORKS)).
    pub fn forks(mut self, forks: usize) -> Self {
        self.forks = forks.max(1);
        self
    }

    /// Queues `f(args)` on `tunnel`, after the calls queued on it before.
    pub fn call<F: RemoteFn>(
        &mut self,
        tunnel: &'a Tunnel,
        f: F,
        args: F::Args,
    ) -> Queued<F::Output> {
        let name = tunnel.host().to_owned();
        self.push(name, Target::Tunnel(tunnel), f, args, None)
    }

    /// Queues `f(args)` on every host of `group` (connecting them when the
    /// queue runs); one handle per host, in the group's order. The group's
    /// [`call_timeout`](Group::call_timeout) bounds each call.
    pub fn call_group<F>(
        &mut self,
        group: &Group,
        f: F,
        args: F::Args,
    ) -> Vec<(String, Queued<F::Output>)>
    where
        F: RemoteFn,
        F::Args: Clone,
    {
        group
            .members
            .iter()
            .map(|m| {
                let queued = self.push(
                    m.name.clone(),
                    Target::Member(Arc::clone(m)),
                    f,
                    args.clone(),
                    group.call_timeout,
                );
                (m.name.clone(), queued)
            })
            .collect()
    }

    /// Queues one call, bounded by `timeout` (a group's call timeout) or
    /// else by its tunnel's.
    fn push<F: RemoteFn>(
        &mut self,
        name: String,
        target: Target<'a>,
        f: F,
        args: F::Args,
        timeout: Option<Duration>,
    ) -> Queued<F::Output> {
        self.push_job(name, target, F::NAME, move |tunnel| {
            let pending = tunnel.call_async(f, args);
            match timeout {
                Some(timeout) => pending.wait_from(Instant::now(), timeout),
                None => pending.wait(),
            }
        })
    }

    /// Queues `put` of the file or tree `local` to `remote` on `tunnel`,
    /// after what was queued on it before (see [`Tunnel::put`]).
    pub fn put(
        &mut self,
        tunnel: &'a Tunnel,
        local: impl AsRef<Path>,
        remote: impl AsRef<Path>,
    ) -> Queued<Transfer> {
        self.put_with(tunnel, local, remote, &FileOptions::new())
    }

    /// [`put`](Queue::put) with options.
    pub fn put_with(
        &mut self,
        tunnel: &'a Tunnel,
        local: impl AsRef<Path>,
        remote: impl AsRef<Path>,
        options: &FileOptions,
    ) -> Queued<Transfer> {
        let job = put_job(local.as_ref(), remote.as_ref(), options, None);
        self.push_job(tunnel.host().to_owned(), Target::Tunnel(tunnel), PUT, job)
    }

    /// Queues `fetch` of `remote` on `tunnel`'s host to `local` (see
    /// [`Tunnel::fetch`]).
    pub fn fetch(
        &mut self,
        tunnel: &'a Tunnel,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
    ) -> Queued<Transfer> {
        self.fetch_with(tunnel, remote, local, &FileOptions::new())
    }

    /// [`fetch`](Queue::fetch) with options.
    pub fn fetch_with(
        &mut self,
        tunnel: &'a Tunnel,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
        options: &FileOptions,
    ) -> Queued<Transfer> {
        let job = fetch_job(
            remote.as_ref(),
            Ok(local.as_ref().to_owned()),
            options,
            None,
        );
        self.push_job(tunnel.host().to_owned(), Target::Tunnel(tunnel), FETCH, job)
    }

    /// Queues [`put`](Queue::put) on every host of `group`, bounded by its
    /// call timeout; one handle per host, in the group's order.
    pub fn put_group(
        &mut self,
        group: &Group,
        local: impl AsRef<Path>,
        remote: impl AsRef<Path>,
        options: &FileOptions,
    ) -> Vec<(String, Queued<Transfer>)> {
        let (local, remote) = (local.as_ref(), remote.as_ref());
        group
            .members
            .iter()
            .map(|m| {
                let job = put_job(local, remote, options, group.call_timeout);
                let queued = self.push_job(m.name.clone(), Target::Member(Arc::clone(m)), PUT, job);
                (m.name.clone(), queued)
            })
            .collect()
    }

    /// Queues [`fetch`](Queue::fetch) from every host of `group` to
    /// `local`, which must contain `{host}` (see [`Group::fetch`]).
    pub fn fetch_group(
        &mut self,
        group: &Group,
        remote: impl AsRef<Path>,
        local: impl AsRef<Path>,
        options: &FileOptions,
    ) -> Vec<(String, Queued<Transfer>)> {
        let locals = super::transfers::host_paths(&group.members, local.as_ref());
        group
            .members
            .iter()
            .zip(locals)
            .map(|(m, local)| {
                let job = fetch_job(remote.as_ref(), local, options, group.call_timeout);
                let queued =
                    self.push_job(m.name.clone(), Target::Member(Arc::clone(m)), FETCH, job);
                (m.name.clone(), queued)
            })
            .collect()
    }

    /// Queues one job on a host: `run` gets the host's tunnel.
    fn push_job<R: Send + 'static>(
        &mut self,
        name: String,
        target: Target<'a>,
        function: &'static str,
        run: impl FnOnce(&Tunnel) -> Result<R> + Send + 'a,
    ) -> Queued<R> {
        let queued = Queued::new(name.clone(), function);
        let state = Arc::clone(&queued.state);
        let host = name.clone();
        let job: Job<'a> = Box::new(move |tunnel| {
            let result = match tunnel {
                Ok(tunnel) => run(tunnel),
                // Each queued call of an unreachable host fails with why.
                Err(e) => Err(e.clone()),
            };
            let mut report = result.as_ref().err().cloned();
            let callbacks = {
                let mut state = lock(&state);
                state.result = Some(result);
                std::mem::take(&mut state.callbacks)
            };
            let state = lock(&state);
            if let Some(result) = &state.result {
                for callback in callbacks {
                    // A panicking callback is this call's failure; the
                    // host's queue and the other callbacks go on.
                    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| callback(result)));
                    if let (Err(panic), None) = (ran, &report) {
                        report = Some(Error::Controller {
                            host: host.clone(),
                            function: Some(function),
                            message: format!(
                                "a `then` callback panicked: {}",
                                chopsticks_agent::panic_message(&*panic)
                            ),
                        });
                    }
                }
            }
            report
        });
        match self.hosts.iter_mut().find(|h| h.target.same(&target)) {
            Some(host) => host.jobs.push(job),
            None => self.hosts.push(HostQueue {
                name,
                target,
                jobs: vec![job],
            }),
        }
        queued
    }

    /// Runs every queued call: each host's calls in the order they were
    /// queued, hosts independently (at most `forks` at once). A failed call
    /// does not stop the calls after it; a host that cannot be connected
    /// fails all of its calls.
    ///
    /// # Errors
    /// A [`GroupError`] listing every failed call, by host.
    pub fn run(self) -> std::result::Result<(), GroupError> {
        super::raise_fd_limit();
        let total: usize = self.hosts.iter().map(|h| h.jobs.len()).sum();
        let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        let hosts: Vec<Mutex<Option<HostQueue<'a>>>> = self
            .hosts
            .into_iter()
            .map(|h| Mutex::new(Some(h)))
            .collect();
        let reports = super::fan_out::on_threads(
            hosts.len(),
            self.forks,
            |i| Ok(lock(&hosts[i]).take().map(run_host).unwrap_or_default()),
            |i, message| Error::Controller {
                host: names[i].clone(),
                function: None,
                message: format!("this program panicked while running the queue: {message}"),
            },
        );
        let mut failures = Vec::new();
        for (report, name) in reports.into_iter().zip(&names) {
            match report {
                Ok(errors) => failures.extend(errors.into_iter().map(|e| (name.clone(), e))),
                Err(e) => failures.push((name.clone(), e)),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        Err(GroupError::of_calls(total, failures))
    }
}

/// A queued put, bounded by `timeout` (a group's) or else by its tunnel's.
fn put_job(
    local: &Path,
    remote: &Path,
    options: &FileOptions,
    timeout: Option<Duration>,
) -> impl FnOnce(&Tunnel) -> Result<Transfer> + Send + 'static {
    let (local, remote, options) = (local.to_owned(), remote.to_owned(), options.clone());
    move |tunnel| {
        let run = files::Run {
            timeout,
            cancel: None,
        };
        files::put(tunnel, Source::Path(&local), &local, &remote, &options, run)
    }
}

/// A queued fetch to `local` (or why the host has no local path).
fn fetch_job(
    remote: &Path,
    local: Result<std::path::PathBuf>,
    options: &FileOptions,
    timeout: Option<Duration>,
) -> impl FnOnce(&Tunnel) -> Result<Transfer> + Send + 'static {
    let (remote, options) = (remote.to_owned(), options.clone());
    move |tunnel| {
        let run = files::Run {
            timeout,
            cancel: None,
        };
        files::fetch(tunnel, &remote, &local?, &options, run)
    }
}

/// Runs one host's queue in order; returns its calls' errors.
fn run_host(host: HostQueue<'_>) -> Vec<Error> {
    let connected = match &host.target {
        Target::Tunnel(t) => Ok(TunnelRef::Borrowed(t)),
        Target::Member(m) => m.tunnel().map(TunnelRef::Shared),
    };
    let mut errors = Vec::new();
    for job in host.jobs {
        let report = match &connected {
            Ok(t) => job(Ok(t.get())),
            Err(e) => job(Err(e)),
        };
        if let Some(error) = report {
            // A lost agent: the group reconnects next time.
            if let (Error::Disconnected { .. }, Ok(TunnelRef::Shared(t)), Target::Member(m)) =
                (&error, &connected, &host.target)
            {
                m.forget_tunnel(t);
            }
            errors.push(error);
        }
    }
    errors
}

enum TunnelRef<'a> {
    Borrowed(&'a Tunnel),
    Shared(Arc<Tunnel>),
}

impl TunnelRef<'_> {
    fn get(&self) -> &Tunnel {
        match self {
            TunnelRef::Borrowed(t) => t,
            TunnelRef::Shared(t) => t,
        }
    }
}

type Callback<R> = Box<dyn FnOnce(&Result<R>) + Send>;

struct State<R> {
    result: Option<Result<R>>,
    callbacks: Vec<Callback<R>>,
}

/// The handle of one queued call: its result once [`Queue::run`] ran it.
pub struct Queued<R> {
    host: String,
    function: &'static str,
    state: Arc<Mutex<State<R>>>,
}

impl<R> std::fmt::Debug for Queued<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("host", &self.host)
            .field("function", &self.function)
            .finish()
    }
}

impl<R> Queued<R> {
    fn new(host: String, function: &'static str) -> Self {
        Queued {
            host,
            function,
            state: Arc::new(Mutex::new(State {
                result: None,
                callbacks: Vec::new(),
            })),
        }
    }

    /// Runs `callback` with the result as soon as the call finishes (on the
    /// thread that runs the host's queue, before its next call starts). A
    /// callback that panics does not stop the queue: [`Queue::run`] reports
    /// it as this call's failure ([`Error::Controller`]).
    pub fn then(&self, callback: impl FnOnce(&Result<R>) + Send + 'static) -> &Self {
        let mut state = lock(&self.state);
        match &state.result {
            Some(result) => callback(result),
            None => state.callbacks.push(Box::new(callback)),
        }
        self
    }

    /// The call's result, once the queue has run.
    ///
    /// # Errors
    /// The call's own error, or [`Error::Controller`] if the queue has not
    /// run the call (it was dropped before [`Queue::run`]).
    pub fn result(self) -> Result<R> {
        lock(&self.state).result.take().unwrap_or_else(|| {
            Err(Error::Controller {
                host: self.host.clone(),
                function: Some(self.function),
                message: "queued, but the queue was dropped before `run`".into(),
            })
        })
    }
}
