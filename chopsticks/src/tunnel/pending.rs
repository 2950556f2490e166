//! `Pending`: a call in flight, as its caller sees it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::conn::{Conn, Lost, Outcome, Slot};
use crate::error::{Error, RemoteError, Result};
use crate::wire::Failure;

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
    },
    /// Failed before it was sent, or done; the host is kept for a second poll.
    Done(Option<Error>, String),
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
            Inner::Done(error, _) => f.debug_tuple("Pending").field(error).finish(),
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
            },
            _output: PhantomData,
        }
    }

    pub(crate) fn failed(error: Error) -> Self {
        let host = error.host().to_owned();
        Pending {
            inner: Inner::Done(Some(error), host),
            _output: PhantomData,
        }
    }

    /// Waits for the result: for as long as the call runs, or, when the
    /// tunnel has a call timeout ([`Tunnel::set_call_timeout`](crate::Tunnel::set_call_timeout)),
    /// until that long after the call was made. The wait also ends when the
    /// agent goes away ([`Error::Disconnected`]).
    ///
    /// # Errors
    /// Any [`Error`] of a call: the remote function's own error, a panic, a
    /// lost agent, an undecodable result, [`Error::Timeout`].
    pub fn wait(mut self) -> Result<T> {
        match &mut self.inner {
            Inner::Done(error, host) => {
                // A wait all the same: the thread's burst is over.
                super::conn::end_burst();
                Err(take_error(error, host))
            }
            Inner::InFlight {
                conn,
                slot,
                function,
                ..
            } => {
                // A call corked to go with others goes now: it is waited for,
                // and so do the rest of this thread's burst.
                conn.urge_burst();
                match slot.wait() {
                    Some(outcome) => decode(conn.host(), function, outcome),
                    None => Err(take_error(&mut None, conn.host())),
                }
            }
        }
    }

    /// Waits at most `timeout` from now for the result, instead of the
    /// tunnel's call timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no result arrived in time (the tunnel stays
    /// usable; the call is cancelled on the host, where the function sees
    /// [`agent::cancelled`](crate::agent::cancelled), and its late result is
    /// discarded), or any other [`Error`] of a call.
    pub fn wait_timeout(self, timeout: Duration) -> Result<T> {
        self.wait_from(Instant::now(), timeout)
    }

    /// Waits until `start + timeout`; a timeout reports `timeout`.
    pub(crate) fn wait_from(mut self, start: Instant, timeout: Duration) -> Result<T> {
        self.set_timeout_from(start, timeout);
        self.wait()
    }

    /// Fails the call with a timeout of `timeout` at `start + timeout`,
    /// instead of at the deadline it had. A bound too far to represent is
    /// no bound.
    pub(crate) fn set_timeout_from(&mut self, start: Instant, timeout: Duration) {
        if let Inner::InFlight { conn, req, .. } = &self.inner {
            match start.checked_add(timeout) {
                Some(at) => conn.set_deadline(*req, at, timeout),
                None => conn.clear_deadline(*req),
            }
        }
    }
}

fn take_error(error: &mut Option<Error>, host: &str) -> Error {
    error.take().unwrap_or_else(|| Error::Controller {
        host: host.to_owned(),
        function: None,
        message: "a call was waited for again after it completed".into(),
    })
}

/// Awaiting needs no particular runtime: the tunnel's I/O thread wakes the
/// task when the reply arrives, and fails the call at its deadline (the
/// tunnel's call timeout, counted from the call) as it does for
/// [`Pending::wait`]. Without a call timeout, race it against your
/// runtime's timer for a bound of your own.
impl<T: DeserializeOwned> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let ready = match &mut self.inner {
            Inner::Done(error, host) => return Poll::Ready(Err(take_error(error, host))),
            Inner::InFlight {
                conn,
                slot,
                function,
                ..
            } => {
                conn.urge_burst();
                match slot.poll(cx.waker()) {
                    Some(outcome) => decode(conn.host(), function, outcome),
                    None => return Poll::Pending,
                }
            }
        };
        // Done: a later poll or wait gets an error, never a hang.
        let host = self.host().to_owned();
        self.finish();
        self.inner = Inner::Done(None, host);
        Poll::Ready(ready)
    }
}

impl<T> Pending<T> {
    fn host(&self) -> &str {
        match &self.inner {
            Inner::InFlight { conn, .. } => conn.host(),
            Inner::Done(_, host) => host,
        }
    }

    /// What ends this call at once with a cancellation (on the agent too,
    /// for a call with streams); `None` when it is not in flight.
    pub(crate) fn canceller(&self) -> Option<Box<dyn Fn() + Send>> {
        match &self.inner {
            Inner::InFlight { conn, req, .. } => {
                let (conn, req) = (Arc::clone(conn), *req);
                Some(Box::new(move || conn.cancel(req)))
            }
            Inner::Done(..) => None,
        }
    }

    /// Tells the tunnel nobody waits for this call any more.
    fn finish(&self) {
        if let Inner::InFlight { conn, req, .. } = &self.inner {
            conn.forget(*req);
        }
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        self.finish();
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
        Err(Lost::Interrupted) => Err(Error::Interrupted {
            host,
            function: Some(function),
        }),
        Err(Lost::Cancelled) => Err(Error::Controller {
            host,
            function: Some(function),
            message: "the call was cancelled by its caller".into(),
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
