//! Deadlines of awaited calls. A blocking waiter bounds its own wait; an
//! awaited [`Pending`](super::Pending) cannot, so one thread for the whole
//! process, started by the first awaited call that has a deadline, fails
//! each such call with a timeout when its deadline passes. It sleeps until
//! the earliest deadline and holds no connection alive.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::conn::Conn;

/// Fails call `req` of `conn` with a timeout of `after` at `at`, unless it
/// is answered (or forgotten) before.
///
/// # Errors
/// When the timer thread cannot be started.
pub(crate) fn watch(
    conn: &Arc<Conn>,
    req: u64,
    at: Instant,
    after: Duration,
) -> Result<(), String> {
    let timer = timer()?;
    let mut due = timer.lock();
    let earliest = due.peek().is_none_or(|first| at < first.at);
    due.push(Due {
        at,
        conn: Arc::downgrade(conn),
        req,
        after,
    });
    drop(due);
    if earliest {
        timer.wake.notify_one();
    }
    Ok(())
}

struct Timer {
    due: Mutex<BinaryHeap<Due>>,
    wake: Condvar,
}

/// One deadline; the heap's top is the earliest.
struct Due {
    at: Instant,
    conn: Weak<Conn>,
    req: u64,
    after: Duration,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, BinaryHeap<Due>> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut due = self.lock();
        loop {
            let now = Instant::now();
            let mut expired = Vec::new();
            while due.peek().is_some_and(|first| first.at <= now) {
                expired.extend(due.pop());
            }
            if !expired.is_empty() {
                // Not under the lock: expiring takes the connection's locks.
                drop(due);
                for e in expired {
                    if let Some(conn) = e.conn.upgrade() {
                        conn.expire(e.req, e.after);
                    }
                }
                due = self.lock();
                continue;
            }
            due = match due.peek().map(|first| first.at - now) {
                Some(wait) => {
                    self.wake
                        .wait_timeout(due, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.wake.wait(due).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

fn timer() -> Result<&'static Timer, String> {
    static TIMER: OnceLock<Result<Arc<Timer>, String>> = OnceLock::new();
    let timer = TIMER.get_or_init(|| {
        let timer = Arc::new(Timer {
            due: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
        });
        let runs = Arc::clone(&timer);
        thread::Builder::new()
            .name("chopsticks-deadlines".into())
            .spawn(move || runs.run())
            .map(|_| timer)
            .map_err(|e| format!("cannot start the thread that times awaited calls: {e}"))
    });
    timer.as_deref().map_err(Clone::clone)
}
