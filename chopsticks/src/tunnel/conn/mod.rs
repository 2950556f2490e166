//! One agent connection: sending calls, their deadlines, closing, and what
//! happens when the agent goes away. Opening one is `open`.
//!
//! Every tunnel has one I/O thread (`io`), the only reader of the agent's
//! output. It completes each call's [`Slot`], forwards log records, fails
//! calls whose deadline passed (`deadlines`), writes what a caller could not
//! write without blocking (`send`), and fails every waiter at once when the
//! agent goes away. Callers write and wait; calls corked to go together
//! that nobody waited for are written by one thread for the whole process,
//! the cork watcher (`corks`).

mod corks;
mod deadlines;
mod frames;
mod interrupt;
mod io;
mod open;
mod pipe;
mod send;
mod slot;
mod transport;

use chopsticks_agent::sync::Unpoisoned;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

pub(crate) use corks::end_burst;
#[cfg(feature = "fuzzing")]
pub(crate) use frames::check_cut;
pub use interrupt::{interrupt, interrupted};
pub(crate) use open::Launch;
pub(crate) use pipe::Pipe;
pub(crate) use slot::{Lost, Outcome, Slot};
pub(crate) use transport::{pipe, Link, Transport};

use super::start::advice::describe;
use super::start::stderr::Tail;
use crate::error::{Error, Result};
use crate::wire::{self, Hello, Request};
use deadlines::Deadlines;
use send::Outgoing;
use transport::wait_exit;

/// How long a dying agent gets to finish its stderr and exit before an
/// error is reported without them.
pub(super) const LAST_WORDS: Duration = Duration::from_millis(300);
/// How long a closing tunnel waits for its host's last output to be written.
const OUTPUT_FLUSH: Duration = Duration::from_secs(1);
/// How long `close` waits for a graceful exit before killing.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a cancelled call with streams waits for the agent to say it
/// stopped (and removed what it was writing).
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How a call goes to the agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sending {
    /// Written at once: its caller waits for it now.
    Now,
    /// Corked among others in flight or within the thread's burst (see
    /// `send`): its caller may make more calls before it waits.
    Corked,
}

pub(crate) struct Conn {
    host: String,
    state: Mutex<State>,
    out: Mutex<Outgoing>,
    /// Frames wait in `out.queue` the agent did not take: the I/O thread
    /// polls for writability.
    queued: AtomicBool,
    /// Frames are corked in `out.queue` (see `send`).
    corked: AtomicBool,
    /// The cork watcher has the tunnel on its list (see `corks`).
    watched: AtomicBool,
    /// Writing a byte here wakes the I/O thread.
    wake: File,
    next_req: AtomicU64,
    /// The default bound of a call, in nanoseconds; `u64::MAX` for none.
    call_timeout: AtomicU64,
    transport: Mutex<Box<dyn Transport>>,
    closing: AtomicBool,
    /// The agent's functions, when its registry differs from ours.
    known: Option<HashSet<u64>>,
    hello: Hello,
    uploaded: bool,
    /// How deep the agent sits (1: started by a program).
    depth: u32,
    /// Whether the agent was started check-only.
    check_only: bool,
    tail: Arc<Tail>,
}

#[derive(Default)]
struct State {
    /// Calls sent and not yet answered, by request ID.
    waiting: HashMap<u64, Waiting>,
    /// Set once the agent is gone: why, and its last stderr lines.
    closed: Option<(String, Vec<String>)>,
    deadlines: Deadlines,
}

struct Waiting {
    slot: Arc<Slot>,
    /// The call's streams, when it has any.
    pipe: Option<Arc<Pipe>>,
    /// When the call fails with a timeout, and the timeout it reports.
    deadline: Option<(Instant, Duration)>,
}

impl Conn {
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn hello(&self) -> &Hello {
        &self.hello
    }

    /// How deep the agent sits: 1 when a program started it, 2 through a
    /// bastion or from an agent's function ...
    pub(crate) fn depth(&self) -> u32 {
        self.depth
    }

    /// Whether the agent was started check-only.
    pub(crate) fn check_only(&self) -> bool {
        self.check_only
    }

    pub(crate) fn uploaded(&self) -> bool {
        self.uploaded
    }

    pub(crate) fn call_timeout(&self) -> Option<Duration> {
        match self.call_timeout.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn set_call_timeout(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(u64::MAX, |d| d.as_nanos().min(u64::MAX as u128 - 1) as u64);
        self.call_timeout.store(nanos, Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unpoisoned()
    }

    /// Wakes the I/O thread (to write, to sleep less, or to stop).
    fn wake(&self) {
        // A full pipe already wakes it; nothing else can go wrong here.
        let _ = (&self.wake).write(&[1]);
    }

    /// Sends one call and returns at once: its request ID and the slot its
    /// outcome arrives in. The tunnel's call timeout, if any, counts from
    /// now.
    ///
    /// # Errors
    /// What fails before anything is sent: an unknown function, arguments
    /// that cannot be encoded, a closed tunnel.
    pub(crate) fn call<A: Serialize>(
        self: &Arc<Self>,
        fn_id: u64,
        function: &'static str,
        args: &A,
        sending: Sending,
    ) -> Result<(u64, Arc<Slot>)> {
        self.send_call(fn_id, function, args, None, sending)
            .map(|(req, slot, _)| (req, slot))
    }

    /// Sends one call with streams: an input stream (the caller sends it
    /// with [`send_data`](Conn::send_data) and [`send_end`](Conn::send_end))
    /// and/or an output stream the agent may send before its reply; both
    /// pass through the returned [`Pipe`].
    ///
    /// # Errors
    /// As [`call`](Conn::call).
    pub(crate) fn call_streaming<A: Serialize>(
        self: &Arc<Self>,
        fn_id: u64,
        function: &'static str,
        args: &A,
        input: bool,
        output: bool,
    ) -> Result<(u64, Arc<Slot>, Arc<Pipe>)> {
        let streams = Some((input, output));
        let (req, slot, pipe) = self.send_call(fn_id, function, args, streams, Sending::Now)?;
        let pipe = pipe.unwrap_or_default();
        Ok((req, slot, pipe))
    }

    /// Encodes and sends one call, with streams when `streams` says which
    /// (input, output), and registers its slot and deadline.
    fn send_call<A: Serialize>(
        self: &Arc<Self>,
        fn_id: u64,
        function: &'static str,
        args: &A,
        streams: Option<(bool, bool)>,
        sending: Sending,
    ) -> Result<(u64, Arc<Slot>, Option<Arc<Pipe>>)> {
        let host = || self.host.clone();
        if interrupted() {
            return Err(Error::Interrupted {
                host: host(),
                function: Some(function),
            });
        }
        if self
            .known
            .as_ref()
            .is_some_and(|known| !known.contains(&fn_id))
        {
            return Err(Error::UnknownFunction {
                host: host(),
                function,
            });
        }
        let encode_error = |message: String| Error::Encode {
            host: host(),
            function,
            message,
        };
        let args = postcard::to_allocvec(args).map_err(|e| encode_error(e.to_string()))?;
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (input, output) = streams.unwrap_or((false, false));
        let frame = wire::encode_frame(&Request::Call {
            req,
            fn_id,
            args: &args,
            input,
            output,
        })
        .map_err(|e| encode_error(e.to_string()))?;
        let pipe = streams.map(|_| Arc::new(Pipe::default()));
        let slot;
        let deadline = self
            .call_timeout()
            .and_then(|t| Some((Instant::now().checked_add(t)?, t)));
        let (alone, sooner) = {
            let mut state = self.state();
            if let Some((reason, stderr)) = &state.closed {
                return Err(Error::Disconnected {
                    host: host(),
                    function: Some(function),
                    reason: reason.clone(),
                    stderr: stderr.clone(),
                });
            }
            let alone = state.waiting.is_empty();
            slot = Arc::new(Slot::new(alone));
            let waiting = Waiting {
                slot: Arc::clone(&slot),
                pipe: pipe.clone(),
                deadline,
            };
            state.waiting.insert(req, waiting);
            let sooner = deadline.is_some_and(|(at, _)| state.push_deadline(at, req));
            (alone, sooner)
        };
        // A call waited for at once, or with streams (whose caller goes on
        // to send or read them), is written now, and so is the first of a
        // burst; one among others in flight, or within a burst, is corked to
        // go with the calls that follow it (see `send`).
        let cork = match sending {
            Sending::Now => None,
            Sending::Corked => {
                let now = Instant::now();
                let continues = corks::burst_call(now);
                (!alone || continues).then_some(now)
            }
        };
        let wake = self.send_or_cork(req, frame, cork);
        if wake || sooner {
            self.wake();
        }
        Ok((req, slot, pipe))
    }

    /// Fails call `req` with a timeout of `after` at `at`, instead of at
    /// the deadline it had.
    pub(crate) fn set_deadline(&self, req: u64, at: Instant, after: Duration) {
        let sooner = {
            let mut state = self.state();
            match state.waiting.get_mut(&req) {
                Some(waiting) => waiting.deadline = Some((at, after)),
                None => return,
            }
            state.push_deadline(at, req)
        };
        if sooner {
            self.wake();
        }
    }

    /// Lets call `req` wait as long as it runs.
    pub(crate) fn clear_deadline(&self, req: u64) {
        if let Some(waiting) = self.state().waiting.get_mut(&req) {
            waiting.deadline = None;
        }
    }

    /// Drops interest in a call's result, and cancels it on the agent
    /// (`agent::cancelled` says so there).
    pub(crate) fn forget(&self, req: u64) {
        // A call dropped unanswered still runs: if it is corked, it goes
        // now, before nobody waits for it.
        self.urge();
        if self.take_waiting(req).is_some() {
            self.send_cancel(req);
        }
    }

    /// Cancels call `req`, on the agent too. A call without streams ends
    /// now with [`Lost::Cancelled`] (it writes nothing its caller waits
    /// for). A call
    /// with streams stops streaming at once and is cancelled on the agent;
    /// it then ends with the agent's reply, once the function there cleaned
    /// up (its temporary files), or at the latest after [`CANCEL_GRACE`].
    pub(crate) fn cancel(&self, req: u64) {
        let pipe = {
            let state = self.state();
            match state.waiting.get(&req) {
                None => return,
                Some(waiting) => waiting.pipe.clone(),
            }
        };
        match pipe {
            None => {
                if let Some(waiting) = self.take_waiting(req) {
                    self.send_cancel(req);
                    waiting.slot.complete(Err(Lost::Cancelled));
                }
            }
            Some(pipe) => {
                pipe.close();
                self.send_cancel(req);
                let at = Instant::now() + CANCEL_GRACE;
                let sooner = self
                    .state()
                    .waiting
                    .get(&req)
                    .is_none_or(|w| w.deadline.is_none_or(|(when, _)| at < when));
                if sooner {
                    self.set_deadline(req, at, CANCEL_GRACE);
                }
            }
        }
    }

    /// Removes call `req` from the waiting calls; its pipe closes.
    fn take_waiting(&self, req: u64) -> Option<Waiting> {
        let waiting = self.state().waiting.remove(&req);
        if let Some(pipe) = waiting.as_ref().and_then(|w| w.pipe.as_ref()) {
            pipe.close();
        }
        waiting
    }

    /// Completes call `req`, if it still waits.
    fn deliver(&self, req: u64, outcome: Outcome) {
        if let Some(waiting) = self.take_waiting(req) {
            waiting.slot.complete(outcome);
        }
    }

    /// The pipe of call `req`, while it waits: `Ok(None)` when nobody
    /// waits for it any more.
    ///
    /// # Errors
    /// When the call waits but was made without streams.
    fn pipe(&self, req: u64) -> std::result::Result<Option<Arc<Pipe>>, String> {
        match self.state().waiting.get(&req) {
            None => Ok(None),
            Some(Waiting { pipe: Some(p), .. }) => Ok(Some(Arc::clone(p))),
            Some(_) => Err(format!(
                "the agent sent stream frames for call {req}, which has no streams"
            )),
        }
    }

    /// Fails the calls whose deadline is due; returns the next deadline.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let next = {
            let mut state = self.state();
            while let Some((at, req)) = state.deadlines.pop_due(now) {
                let due = state
                    .waiting
                    .get(&req)
                    .is_some_and(|w| w.deadline.is_some_and(|(when, _)| when == at));
                if due {
                    expired.extend(state.waiting.remove(&req).map(|w| (req, w)));
                }
            }
            state.deadlines.next()
        };
        for (req, waiting) in expired {
            let after = waiting.deadline.map_or(Duration::ZERO, |(_, after)| after);
            if let Some(pipe) = &waiting.pipe {
                pipe.close();
            }
            // Nobody waits for it: the agent's function may stop.
            self.send_cancel(req);
            waiting.slot.complete(Err(Lost::TimedOut(after)));
        }
        next
    }

    /// Cancels every call waiting, on the agent too, and fails it with
    /// [`Lost::Interrupted`] (see [`interrupt`]).
    fn interrupt(&self) {
        let waiting = std::mem::take(&mut self.state().waiting);
        for (req, waiting) in waiting {
            if let Some(pipe) = &waiting.pipe {
                pipe.close();
            }
            self.send_cancel(req);
            waiting.slot.complete(Err(Lost::Interrupted));
        }
    }

    /// The tunnel was closed or its agent is gone: it takes no calls.
    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// Fails every waiting call and refuses new ones.
    fn shut(&self, reason: String, stderr: Vec<String>) {
        let waiting = {
            let mut state = self.state();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some((reason.clone(), stderr.clone()));
            std::mem::take(&mut state.waiting)
        };
        for waiting in waiting.into_values() {
            if let Some(pipe) = &waiting.pipe {
                pipe.close();
            }
            waiting.slot.complete(Err(Lost::Closed {
                reason: reason.clone(),
                stderr: stderr.clone(),
            }));
        }
        // The I/O thread stops once it sees the tunnel closed.
        self.wake();
        // What the host printed last is written before the tunnel is gone.
        crate::output::flush(OUTPUT_FLUSH);
    }

    /// Asks the agent to exit, kills it after [`CLOSE_GRACE`], and fails the
    /// calls still waiting. Idempotent.
    pub(crate) fn close(&self) {
        self.begin_close();
        self.finish_close_by(Instant::now() + CLOSE_GRACE);
    }

    /// Asks the agent to exit and closes its input, without waiting.
    pub(crate) fn begin_close(&self) {
        // Calls made before the close reach the agent, as they did before
        // they were corked.
        self.urge();
        self.closing.store(true, Ordering::SeqCst);
        let (to_agent, midframe) = self.stop_sending();
        // After half a frame, a Shutdown would read as garbage: closing the
        // input alone ends the agent.
        if let Some(mut to_agent) = to_agent.filter(|_| !midframe) {
            if let Ok(frame) = wire::encode_frame(&Request::Shutdown) {
                // Non-blocking: if the pipe is full, its closing ends the agent too.
                let _ = to_agent.write_all(&frame);
            }
        }
    }

    /// Waits until `deadline` for the agent to exit, kills it if it has
    /// not, and fails the calls still waiting.
    pub(crate) fn finish_close_by(&self, deadline: Instant) {
        {
            let mut transport = self.transport.lock().unpoisoned();
            let grace = deadline.saturating_duration_since(Instant::now());
            if wait_exit(transport.as_mut(), grace).is_none() {
                transport.kill();
            }
        }
        self.shut("the tunnel was closed".into(), Vec::new());
        // The I/O thread reads the host's last stderr lines (for at most
        // LAST_WORDS, and within the close's deadline): they are printed
        // before the tunnel is gone, so a program that exits right after
        // closing loses none of them.
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = self
            .tail
            .lines_after_eof(left.min(LAST_WORDS + Duration::from_millis(100)));
        crate::output::flush(OUTPUT_FLUSH);
    }

    /// Stops the agent now.
    fn kill(&self) {
        self.transport.lock().unpoisoned().kill();
    }

    /// The agent's output ended (`why` is `None`) or broke the protocol;
    /// the I/O thread has read its last stderr lines.
    fn lost(&self, why: Option<String>) {
        if self.closing.load(Ordering::SeqCst) {
            return self.shut("the tunnel was closed".into(), Vec::new());
        }
        let status = {
            let mut transport = self.transport.lock().unpoisoned();
            wait_exit(transport.as_mut(), LAST_WORDS)
        };
        let stderr = self.tail.lines_after_eof(Duration::ZERO);
        let mut reason = match status {
            Some(status) => describe(status),
            None => "its output ended".to_owned(),
        };
        if let Some(why) = why {
            reason = format!("{why}; {reason}");
        }
        self.shut(reason, stderr);
    }
}

impl State {
    /// Adds a deadline; returns whether it is now the earliest.
    fn push_deadline(&mut self, at: Instant, req: u64) -> bool {
        let State {
            waiting, deadlines, ..
        } = self;
        deadlines.push(at, req, |at, req| {
            waiting
                .get(&req)
                .is_some_and(|w| w.deadline.is_some_and(|(when, _)| when == at))
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let transport = self.transport.get_mut().unpoisoned();
        if matches!(transport.try_wait(), Ok(None)) {
            transport.kill();
        }
    }
}
