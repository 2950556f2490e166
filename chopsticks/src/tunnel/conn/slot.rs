//! Where the I/O thread puts a call's outcome, and where its waiter sleeps
//! (a blocking thread on the condvar, a future through its waker).

use chopsticks_agent::sync::Unpoisoned;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::wire::Failure;

/// How long a waiter looks for a fast call's outcome before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// Why a call completed without a value.
#[derive(Debug, Clone)]
pub(crate) enum Lost {
    /// The agent reported a failure.
    Failed(Failure),
    /// The connection ended.
    Closed { reason: String, stderr: Vec<String> },
    /// The call's deadline passed; the timeout it had.
    TimedOut(Duration),
    /// Its caller cancelled it (a dropped transfer handle).
    Cancelled,
    /// The program was interrupted (`interrupt`).
    Interrupted,
}

pub(crate) type Outcome = std::result::Result<String, Lost>;

/// One call's outcome, once it is in.
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
    /// Set with the outcome, for a spinning waiter.
    done: AtomicBool,
    /// The call was the only one in flight when it was made: its waiter
    /// spins a little before it sleeps (see [`Slot::wait`]).
    alone: bool,
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Outcome>,
    /// The outcome was taken: later completions are dropped.
    taken: bool,
    /// A blocking waiter sleeps on `ready` (only then is it notified:
    /// a notification is a system call).
    sleeping: bool,
    waker: Option<Waker>,
}

impl Slot {
    pub(crate) fn new(alone: bool) -> Slot {
        Slot {
            state: Mutex::default(),
            ready: Condvar::new(),
            done: AtomicBool::new(false),
            alone,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unpoisoned()
    }

    /// Stores the outcome (the first one wins) and wakes the waiter.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let (waker, sleeping) = {
            let mut state = self.lock();
            if state.outcome.is_some() || state.taken {
                return;
            }
            state.outcome = Some(outcome);
            self.done.store(true, Ordering::Release);
            (state.waker.take(), state.sleeping)
        };
        if sleeping {
            self.ready.notify_all();
        }
        if let Some(waker) = waker {
            // The waker is the executor's code, run by the tunnel's I/O
            // thread: its panic must not end that thread (nobody would read
            // or time this tunnel again); the panic hook has reported it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        }
    }

    /// Blocks until the outcome is in, and takes it. Deadlines are the I/O
    /// thread's: it completes the slot with [`Lost::TimedOut`].
    ///
    /// When the call was alone in flight, it first yields the CPU for a few tens of microseconds
    /// while it checks for the outcome: a fast call is then in before the
    /// waiter sleeps, and the I/O thread need not wake it (on a VM a wake
    /// across CPUs costs more than the call).
    pub(crate) fn wait(&self) -> Option<Outcome> {
        if self.alone {
            let start = Instant::now();
            while !self.done.load(Ordering::Acquire) && start.elapsed() < SPIN {
                std::thread::yield_now();
            }
        }
        let mut state = self.lock();
        while state.outcome.is_none() && !state.taken {
            state.sleeping = true;
            state = self.ready.wait(state).unpoisoned();
        }
        state.sleeping = false;
        state.taken = true;
        state.outcome.take()
    }

    /// Takes the outcome if it is in; otherwise remembers `waker` to wake.
    pub(crate) fn poll(&self, waker: &Waker) -> Option<Outcome> {
        let mut state = self.lock();
        match state.outcome.take() {
            Some(outcome) => {
                state.taken = true;
                Some(outcome)
            }
            None => {
                match &state.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => state.waker = Some(waker.clone()),
                }
                None
            }
        }
    }
}
