//! `Pending`: a call in flight.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::conn::Conn;
use super::deadlines;
use crate::error::{Error, RemoteError, Result};
use crate::wire::Failure;

/// Why a slot completed without a value.
#[derive(Debug, Clone)]
pub(crate) enum Lost {
    /// The agent reported a failure.
    Failed(Failure),
    /// The connection ended.
    Closed { reason: String, stderr: Vec<String> },
    /// An awaited call's deadline passed; the timeout it had.
    TimedOut(Duration),
}

pub(crate) type Outcome = std::result::Result<String, Lost>;

/// Where a reader puts a call's outcome, and where its waiter sleeps.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
    /// A future waits for this slot (and is counted by the connection).
    future: bool,
    /// Nobody waits any more: the outcome is dropped.
    abandoned: bool,
    /// A releasing reader handed the reader role to this slot's waiter.
    role_offered: bool,
    /// The blocking waiter gave up (deadline): hand it nothing.
    left: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Stores the outcome and wakes the waiter. Returns whether a counted
    /// future was waiting.
    pub(crate) fn complete(&self, outcome: Outcome) -> bool {
        let (waker, future) = {
            let mut state = self.lock();
            if state.outcome.is_some() || state.abandoned {
                return false;
            }
            state.outcome = Some(outcome);
            // Counted once: the connection stops counting it now.
            (state.waker.take(), std::mem::take(&mut state.future))
        };
        self.wake.notify_all();
        if let Some(waker) = waker {
            // The waker is the executor's code, run by whoever delivers: a
            // reader holding the connection's reader role, or the deadline
            // timer. Its panic must not take them down (nobody would read,
            // or time, again); the panic hook has reported it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        }
        future
    }

    /// Marks the slot abandoned. Returns whether a counted future was waiting.
    pub(crate) fn abandon(&self) -> bool {
        let mut state = self.lock();
        state.abandoned = true;
        std::mem::take(&mut state.future)
    }

    /// Hands the reader role to this slot's sleeping waiter. Refused when
    /// the outcome is already in or the waiter has left.
    pub(crate) fn offer_role(&self) -> bool {
        let mut state = self.lock();
        if state.outcome.is_some() || state.left || state.abandoned {
            return false;
        }
        state.role_offered = true;
        drop(state);
        self.wake.notify_all();
        true
    }

    /// Sleeps until the outcome is in, the reader role is handed over, or
    /// `deadline` passes. Returns whether this waiter now holds the role.
    pub(crate) fn sleep(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.lock();
        while state.outcome.is_none() && !state.role_offered {
            state = match deadline {
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        // Gone: the role must not be handed to us any more.
                        state.left = true;
                        break;
                    }
                    self.wake
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        std::mem::take(&mut state.role_offered)
    }

    /// Takes the outcome; the waiter leaves with it.
    fn take(&self) -> Option<Outcome> {
        let mut state = self.lock();
        state.left = true;
        state.outcome.take()
    }
}

/// A call in flight, from [`Tunnel::call_async`](crate::Tunnel::call_async).
///
/// Wait for it with [`wait`](Pending::wait) or
/// [`wait_timeout`](Pending::wait_timeout), or `.await` it: `Pending`
/// implements [`Future`] and needs no particular runtime. Dropping it
/// abandons the result (the remote call still runs to its end).
#[must_use = "a call's result is lost unless it is waited for"]
pub struct Pending<T> {
    inner: Inner,
    _output: PhantomData<fn() -> T>,
}

enum Inner {
    InFlight {
        conn: Arc<Conn>,
        slot: Arc<Slot>,
        req: u64,
        function: &'static str,
        /// When the call was sent: the tunnel's call timeout counts from here.
        sent: Instant,
    },
    /// Failed before it was sent; the host is kept for a second poll.
    Failed(Option<Error>, String),
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::InFlight {
                conn,
                req,
                function,
                ..
            } => f
                .debug_struct("Pending")
                .field("host", &conn.host())
                .field("function", function)
                .field("req", req)
                .finish(),
            Inner::Failed(error, _) => f.debug_tuple("Pending").field(error).finish(),
        }
    }
}

impl<T: DeserializeOwned> Pending<T> {
    pub(crate) fn in_flight(
        conn: Arc<Conn>,
        slot: Arc<Slot>,
        req: u64,
        function: &'static str,
    ) -> Self {
        Pending {
            inner: Inner::InFlight {
                conn,
                slot,
                req,
                function,
                sent: Instant::now(),
            },
            _output: PhantomData,
        }
    }

    pub(crate) fn failed(error: Error) -> Self {
        let host = error.host().to_owned();
        Pending {
            inner: Inner::Failed(Some(error), host),
            _output: PhantomData,
        }
    }

    /// Waits for the result: for as long as the call runs, or, when the
    /// tunnel has a call timeout ([`Tunnel::set_call_timeout`](crate::Tunnel::set_call_timeout)),
    /// until that long after the call was sent. The wait also ends when the
    /// agent goes away ([`Error::Disconnected`]).
    ///
    /// # Errors
    /// Any [`Error`] of a call: the remote function's own error, a panic, a
    /// lost agent, an undecodable result, [`Error::Timeout`].
    pub fn wait(self) -> Result<T> {
        let deadline = match &self.inner {
            Inner::InFlight { conn, sent, .. } => conn
                .call_timeout()
                .and_then(|timeout| Some((sent.checked_add(timeout)?, timeout))),
            Inner::Failed(..) => None,
        };
        self.wait_until(deadline)
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no result arrived in time (the tunnel stays
    /// usable; the remote call may still be running and its late result is
    /// discarded), or any other [`Error`] of a call.
    pub fn wait_timeout(self, timeout: Duration) -> Result<T> {
        // A bound too far to represent is no bound.
        let deadline = Instant::now().checked_add(timeout).map(|at| (at, timeout));
        self.wait_until(deadline)
    }

    /// Waits until `sent + timeout`; a timeout reports `timeout`.
    pub(crate) fn wait_from(self, sent: Instant, timeout: Duration) -> Result<T> {
        self.wait_until(sent.checked_add(timeout).map(|at| (at, timeout)))
    }

    fn wait_until(mut self, deadline: Option<(Instant, Duration)>) -> Result<T> {
        let (conn, slot, function) = match &mut self.inner {
            Inner::Failed(error, host) => return Err(take_error(error, host)),
            Inner::InFlight {
                conn,
                slot,
                function,
                ..
            } => (conn, slot, *function),
        };
        if conn.wait_for(slot, deadline.map(|(at, _)| at)) {
            if let Some(outcome) = slot.take() {
                return decode(conn.host(), function, outcome);
            }
        }
        Err(Error::Timeout {
            host: conn.host().to_owned(),
            function,
            after: deadline.map_or(Duration::ZERO, |(_, after)| after),
        })
    }
}

fn take_error(error: &mut Option<Error>, host: &str) -> Error {
    error.take().unwrap_or_else(|| Error::Controller {
        host: host.to_owned(),
        function: None,
        message: "a call was polled again after it completed".into(),
    })
}

/// Awaiting needs no particular runtime: a thread of the tunnel reads the
/// reply and wakes the task. The tunnel's call timeout bounds an awaited
/// call as it bounds [`Pending::wait`] (counted from the send, read at the
/// first poll): one thread for the whole process fails it with
/// [`Error::Timeout`] when its time is up. That deadline, once a poll has
/// set it, also holds for a later [`wait`](Pending::wait) of the same call.
/// Without a call timeout, race it against your runtime's timer for a
/// bound of your own.
impl<T: DeserializeOwned> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let ready = match &mut self.inner {
            Inner::Failed(error, host) => return Poll::Ready(Err(take_error(error, host))),
            Inner::InFlight {
                conn,
                slot,
                req,
                function,
                sent,
            } => {
                let mut state = slot.lock();
                match state.outcome.take() {
                    Some(outcome) => {
                        drop(state);
                        decode(conn.host(), function, outcome)
                    }
                    None => {
                        match &state.waker {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => state.waker = Some(cx.waker().clone()),
                        }
                        if state.future {
                            return Poll::Pending;
                        }
                        // The tunnel's call timeout bounds an awaited call
                        // as it bounds `wait`, counted from the send.
                        let deadline = conn
                            .call_timeout()
                            .and_then(|after| Some((sent.checked_add(after)?, after)));
                        let watched = match deadline {
                            Some((at, after)) => deadlines::watch(conn, slot, *req, at, after),
                            None => Ok(()),
                        };
                        // Counted under the slot's lock, so that `complete`
                        // sees it.
                        state.future = true;
                        match watched.and_then(|()| conn.future_waiting()) {
                            Ok(()) => return Poll::Pending,
                            Err(reason) => {
                                state.future = false;
                                drop(state);
                                Err(Error::Disconnected {
                                    host: conn.host().to_owned(),
                                    function: Some(*function),
                                    reason,
                                    stderr: Vec::new(),
                                })
                            }
                        }
                    }
                }
            }
        };
        // Done: a later poll or wait gets an error, never a hang.
        if let Inner::InFlight {
            conn, req, slot, ..
        } = &self.inner
        {
            conn.forget(*req, slot);
        }
        let host = match &ready {
            Err(e) => e.host().to_owned(),
            Ok(_) => String::new(),
        };
        self.inner = Inner::Failed(None, host);
        Poll::Ready(ready)
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Inner::InFlight {
            conn, req, slot, ..
        } = &self.inner
        {
            conn.forget(*req, slot);
        }
    }
}

fn decode<T: DeserializeOwned>(host: &str, function: &'static str, outcome: Outcome) -> Result<T> {
    let host = host.to_owned();
    match outcome {
        Ok(json) => serde_json::from_str(&json).map_err(|e| Error::Decode {
            host,
            function,
            message: format!("the result does not fit the return type: {e}"),
        }),
        Err(Lost::TimedOut(after)) => Err(Error::Timeout {
            host,
            function,
            after,
        }),
        Err(Lost::Closed { reason, stderr }) => Err(Error::Disconnected {
            host,
            function: Some(function),
            reason,
            stderr,
        }),
        Err(Lost::Failed(failure)) => Err(match failure {
            Failure::Error { message, chain } => Error::Remote {
                host,
                function,
                error: RemoteError::new(message, chain),
            },
            Failure::Panic { message, location } => Error::Panic {
                host,
                function,
                message,
                location,
            },
            Failure::UnknownFunction { .. } => Error::UnknownFunction { host, function },
            Failure::BadArgs { message } => Error::Decode {
                host,
                function,
                message: format!("the agent cannot decode the arguments: {message}"),
            },
            Failure::BadReturn { message } => Error::Decode {
                host,
                function,
                message: format!("the agent cannot encode the result: {message}"),
            },
        }),
    }
}
