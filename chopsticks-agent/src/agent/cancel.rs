//! A call's cancellation, as the function running it sees it: the
//! controller stopped waiting for it (the call was dropped, timed out, or
//! interrupted with Ctrl-C) and said so with `Request::Cancel`, or the
//! controller is gone. Functions that run long poll it ([`cancelled`], or
//! a [`CancelToken`] handed to their helper threads) and stop; the agent
//! cannot stop a thread itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sync::Unpoisoned;

/// The flags of the calls running now, by request ID.
#[derive(Default)]
pub(crate) struct Cancels {
    running: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    /// Notified when a call ends, once the agent is closing (a call's end
    /// costs no wake-up otherwise).
    ended: Condvar,
    closing: AtomicBool,
}

impl Cancels {
    /// Call `req` starts: its flag, unset.
    pub(crate) fn start(&self, req: u64) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running
            .lock()
            .unpoisoned()
            .insert(req, Arc::clone(&flag));
        flag
    }

    /// Call `req` ended.
    pub(crate) fn end(&self, req: u64) {
        self.running.lock().unpoisoned().remove(&req);
        if self.closing.load(Ordering::SeqCst) {
            self.ended.notify_all();
        }
    }

    /// The controller cancelled call `req` (a call that ended already is
    /// not affected: the controller could not know yet).
    pub(crate) fn cancel(&self, req: u64) {
        if let Some(flag) = self.running.lock().unpoisoned().get(&req) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// The controller is gone: every call running now is cancelled, and
    /// this waits until they end, or until `grace` passed.
    pub(crate) fn cancel_all(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut running = self.running.lock().unpoisoned();
        self.closing.store(true, Ordering::SeqCst);
        for flag in running.values() {
            flag.store(true, Ordering::SeqCst);
        }
        while !running.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            running = self.ended.wait_timeout(running, left).unpoisoned().0;
        }
    }
}

thread_local! {
    /// The flag of the call running on this thread.
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
    /// When the call running on this thread started.
    static STARTED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` as the call whose flag is `flag`.
pub(crate) fn with_current<R>(flag: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|c| c.borrow_mut().replace(flag));
    let started = STARTED.with(|s| s.replace(Some(Instant::now())));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    STARTED.with(|s| s.set(started));
    result
}

/// When the `#[remote]` call running on this thread started on the agent
/// (`None` outside a call on an agent): what operations time their steps
/// from (`ops::Change::duration`). Also tells two calls apart: each call
/// has its own.
pub fn call_started() -> Option<Instant> {
    STARTED.with(std::cell::Cell::get)
}

/// Whether the `#[remote]` call running on this thread was cancelled: its
/// controller stopped waiting for it (it was dropped, timed out, or
/// interrupted) or is gone. A long function polls it and stops, cleaning
/// up what it started. Always `false` outside a call on an agent (a
/// function called locally).
///
/// ```
/// // A #[remote] function's body (chopsticks::agent::cancelled is this).
/// fn count_slowly(to: u64) -> Result<u64, String> {
///     for i in 0..to {
///         if chopsticks_agent::cancelled() {
///             return Err(format!("cancelled at {i}"));
///         }
///         std::thread::sleep(std::time::Duration::from_millis(10));
///     }
///     Ok(to)
/// }
/// assert_eq!(count_slowly(3), Ok(3)); // called here, not on an agent: never cancelled
/// ```
pub fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    })
}

/// The cancellation of the call running on this thread, to hand to the
/// threads it starts (a thread of its own does not see [`cancelled`]).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Option<Arc<AtomicBool>>);

impl CancelToken {
    /// The token of the call running on this thread; one that is never
    /// cancelled outside a call on an agent.
    pub fn current() -> CancelToken {
        CancelToken(CURRENT.with(|c| c.borrow().clone()))
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_sees_its_own_cancellation_and_tokens_carry_it() {
        let cancels = Cancels::default();
        let flag = cancels.start(7);
        assert!(!cancelled());
        let token = with_current(flag, || {
            assert!(!cancelled());
            cancels.cancel(8); // another call
            assert!(!cancelled());
            cancels.cancel(7);
            assert!(cancelled());
            CancelToken::current()
        });
        assert!(token.is_cancelled() && !cancelled());
        assert!(!CancelToken::current().is_cancelled());
        cancels.end(7);
        let slow = cancels.start(9);
        let start = Instant::now();
        cancels.cancel_all(Duration::from_millis(50));
        assert!(slow.load(Ordering::SeqCst));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
