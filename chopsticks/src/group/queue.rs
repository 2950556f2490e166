//! `Queue`: per-host FIFO queues of calls; hosts proceed independently.

use chopsticks_agent::sync::Unpoisoned;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Group, GroupError, Member};
use crate::error::{Error, Result};
use crate::tunnel::Tunnel;
use crate::RemoteFn;

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
///     for (host, kernel) in queue.call(&web, facts::kernel, ()) {
///         kernel.then(move |r| println!("{host}: {r:?}"));
///     }
///     queue.put(&web, "app.conf", "/etc/app.conf"); // after kernel, per host
///     queue.call(&web, facts::uptime, ()); // after the put
///     queue.run()
/// }
/// ```
pub struct Queue<'a> {
    hosts: Vec<HostQueue<'a>>,
    forks: usize,
}

struct HostQueue<'a> {
    name: String,
    place: Place<'a>,
    jobs: Vec<Job<'a>>,
}

/// What [`Queue`]'s verbs queue on: a [`Tunnel`] (its host: one handle)
/// or a [`Group`] (every host, each bounded by the group's
/// [`call_timeout`](Group::call_timeout): a handle per host). Implemented
/// by this crate only.
pub trait QueueTarget: private::Sealed {
    /// The handles of what was queued: one [`Queued`] for a tunnel,
    /// `(host, Queued)` for each host of a group, in its order.
    type Handles<R>;

    #[doc(hidden)]
    fn gather<R>(handles: Vec<(String, Queued<R>)>) -> Self::Handles<R>;
}

pub(crate) mod private {
    use super::*;

    /// One host of a queue: a tunnel, or a group's host (then bounded by
    /// the group's call timeout).
    #[derive(Debug)]
    pub enum Place<'a> {
        Tunnel(&'a Tunnel),
        Member(Arc<Member>, Option<Duration>),
    }

    pub trait Sealed {
        /// The hosts, in order.
        fn places(&self) -> Vec<(String, Place<'_>)>;
    }

    impl Sealed for Tunnel {
        fn places(&self) -> Vec<(String, Place<'_>)> {
            vec![(self.host().to_owned(), Place::Tunnel(self))]
        }
    }

    impl Sealed for Group {
        fn places(&self) -> Vec<(String, Place<'_>)> {
            self.members
                .iter()
                .map(|m| {
                    let place = Place::Member(Arc::clone(m), self.call_timeout);
                    (m.name.clone(), place)
                })
                .collect()
        }
    }
}

pub(crate) use private::Place;

impl QueueTarget for Tunnel {
    type Handles<R> = Queued<R>;

    fn gather<R>(handles: Vec<(String, Queued<R>)>) -> Queued<R> {
        match handles.into_iter().next() {
            Some((_, queued)) => queued,
            // A tunnel is one place: never reached.
            None => Queued::new(String::new(), "chopsticks::Queue"),
        }
    }
}

impl QueueTarget for Group {
    type Handles<R> = Vec<(String, Queued<R>)>;

    fn gather<R>(handles: Vec<(String, Queued<R>)>) -> Vec<(String, Queued<R>)> {
        handles
    }
}

impl Place<'_> {
    fn same(&self, other: &Place<'_>) -> bool {
        match (self, other) {
            (Place::Tunnel(a), Place::Tunnel(b)) => std::ptr::eq(*a, *b),
            (Place::Member(a, _), Place::Member(b, _)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// What bounds a job here: a group's call timeout, or else the tunnel's.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        match self {
            Place::Tunnel(_) => None,
            Place::Member(_, timeout) => *timeout,
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

    /// Queues `f(args)` on `on`: a tunnel, or every host of a group
    /// (connecting them when the queue runs), after what was queued on each
    /// host before. A group's [`call_timeout`](Group::call_timeout) bounds
    /// each of its hosts' calls, else the tunnel's does.
    pub fn call<On, F>(&mut self, on: &'a On, f: F, args: F::Args) -> On::Handles<F::Output>
    where
        On: QueueTarget,
        F: RemoteFn,
        F::Args: Clone,
    {
        let handles = on
            .places()
            .into_iter()
            .map(|(name, place)| {
                let (timeout, args) = (place.timeout(), args.clone());
                let queued = self.push_job(name.clone(), place, F::NAME, move |tunnel| {
                    let pending = tunnel.call_now(f, args);
                    match timeout {
                        Some(timeout) => pending.wait_from(Instant::now(), timeout),
                        None => pending.wait(),
                    }
                });
                (name, queued)
            })
            .collect();
        On::gather(handles)
    }

    /// Queues one job on a host: `run` gets the host's tunnel.
    pub(crate) fn push_job<R: Send + 'static>(
        &mut self,
        name: String,
        place: Place<'a>,
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
                let mut state = state.lock().unpoisoned();
                state.result = Some(result);
                std::mem::take(&mut state.callbacks)
            };
            let state = state.lock().unpoisoned();
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
        match self.hosts.iter_mut().find(|h| h.place.same(&place)) {
            Some(host) => host.jobs.push(job),
            None => self.hosts.push(HostQueue {
                name,
                place,
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
            |i| {
                Ok(hosts[i]
                    .lock()
                    .unpoisoned()
                    .take()
                    .map(run_host)
                    .unwrap_or_default())
            },
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

/// Runs one host's queue in order; returns its calls' errors.
fn run_host(host: HostQueue<'_>) -> Vec<Error> {
    let connected = match &host.place {
        Place::Tunnel(t) => Ok(TunnelRef::Borrowed(t)),
        Place::Member(m, _) => m.tunnel().map(TunnelRef::Shared),
    };
    let mut errors = Vec::new();
    for job in host.jobs {
        let report = match &connected {
            Ok(t) => job(Ok(t.get())),
            Err(e) => job(Err(e)),
        };
        if let Some(error) = report {
            // A lost agent: the group reconnects next time.
            if let (Error::Disconnected { .. }, Ok(TunnelRef::Shared(t)), Place::Member(m, _)) =
                (&error, &connected, &host.place)
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
        let mut state = self.state.lock().unpoisoned();
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
        self.state
            .lock()
            .unpoisoned()
            .result
            .take()
            .unwrap_or_else(|| {
                Err(Error::Controller {
                    host: self.host.clone(),
                    function: Some(self.function),
                    message: "queued, but the queue was dropped before `run`".into(),
                })
            })
    }
}
