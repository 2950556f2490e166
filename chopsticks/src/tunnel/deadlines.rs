//! Deadlines of awaited calls. A blocking waiter bounds its own wait; an
//! awaited [`Pending`](super::Pending) cannot, so one thread for the whole
//! process, started by the first awaited call that has a deadline, fails
//! each such call with a timeout when its deadline passes. It sleeps until
//! the earliest deadline and holds no connection alive. Deadlines of calls
//! that finished early are swept out as the heap grows, so a high rate of
//! awaited calls with a long timeout does not pile them up.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::pending::Slot;

/// Fails call `req` of `conn` with a timeout of `after` at `at`, unless it
/// is answered (or forgotten) before.
///
/// # Errors
/// When the timer thread cannot be started.
pub(crate) fn watch(
    conn: &Arc<Conn>,
    slot: &Arc<Slot>,
    req: u64,
    at: Instant,
    after: Duration,
) -> Result<(), String> {
    let timer = timer()?;
    let earliest = timer.lock().push(Due {
        at,
        conn: Arc::downgrade(conn),
        slot: Arc::downgrade(slot),
        req,
        after,
    });
    if earliest {
        timer.wake.notify_one();
    }
    Ok(())
}

/// Below this many deadlines the heap is not swept.
const SWEEP_MIN: usize = 1024;

struct Timer {
    heap: Mutex<Heap>,
    wake: Condvar,
}

struct Heap {
    due: BinaryHeap<Due>,
    /// The heap's size that triggers the next sweep.
    sweep_at: usize,
}

/// One deadline; the heap's top is the earliest.
struct Due {
    at: Instant,
    conn: Weak<Conn>,
    /// Alive while the call's `Pending` or its connection holds it: a
    /// finished call's slot is dropped, and its deadline can go.
    slot: Weak<Slot>,
    req: u64,
    after: Duration,
}

impl Due {
    /// Whether the call may still be waiting: its slot is held by its
    /// `Pending` or by its connection's waiting calls. (No lock is taken:
    /// `watch` runs under a slot's lock.)
    fn pending(&self) -> bool {
        self.slot.strong_count() > 0
    }
}

impl Heap {
    /// Adds a deadline; returns whether it is now the earliest.
    fn push(&mut self, due: Due) -> bool {
        let earliest = self.due.peek().is_none_or(|first| due.at < first.at);
        self.due.push(due);
        if self.due.len() >= self.sweep_at {
            // Amortized: each sweep at least halves the heap, or the next
            // one waits for it to double.
            self.due.retain(Due::pending);
            self.sweep_at = (self.due.len() * 2).max(SWEEP_MIN);
        }
        earliest
    }
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
    fn lock(&self) -> MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut heap = self.lock();
        loop {
            let now = Instant::now();
            let mut expired = Vec::new();
            while heap.due.peek().is_some_and(|first| first.at <= now) {
                expired.extend(heap.due.pop());
            }
            if !expired.is_empty() {
                // Not under the lock: expiring takes the connection's locks.
                drop(heap);
                for e in expired {
                    if let Some(conn) = e.conn.upgrade() {
                        conn.expire(e.req, e.after);
                    }
                }
                heap = self.lock();
                continue;
            }
            heap = match heap.due.peek().map(|first| first.at - now) {
                Some(wait) => {
                    self.wake
                        .wait_timeout(heap, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.wake.wait(heap).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The timer, started on first use. A failed start is not remembered: the
/// next awaited call tries again.
fn timer() -> Result<&'static Timer, String> {
    static TIMER: OnceLock<Arc<Timer>> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(timer) = TIMER.get() {
        return Ok(timer);
    }
    let _one_at_a_time = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(timer) = TIMER.get() {
        return Ok(timer);
    }
    let timer = Arc::new(Timer {
        heap: Mutex::new(Heap {
            due: BinaryHeap::new(),
            sweep_at: SWEEP_MIN,
        }),
        wake: Condvar::new(),
    });
    let runs = Arc::clone(&timer);
    thread::Builder::new()
        .name("chopsticks-deadlines".into())
        .spawn(move || runs.run())
        .map_err(|e| format!("cannot start the thread that times awaited calls: {e}"))?;
    Ok(TIMER.get_or_init(|| timer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_of_finished_calls_are_swept_out() {
        let mut heap = Heap {
            due: BinaryHeap::new(),
            sweep_at: SWEEP_MIN,
        };
        let start = Instant::now();
        let live: Vec<Arc<Slot>> = (0..100).map(|_| Arc::default()).collect();
        let due = |i: u64, slot: &Arc<Slot>| Due {
            at: start + Duration::from_secs(3600 + i),
            conn: Weak::new(),
            slot: Arc::downgrade(slot),
            req: i,
            after: Duration::from_secs(3600),
        };
        for (i, slot) in live.iter().enumerate() {
            heap.push(due(i as u64, slot));
        }
        // A million calls that finished long before their deadline.
        for i in 0..1_000_000 {
            heap.push(due(i, &Arc::default()));
        }
        assert!(
            heap.due.len() < SWEEP_MIN,
            "{} deadlines kept",
            heap.due.len()
        );
        let kept: Vec<u64> = heap
            .due
            .iter()
            .filter(|d| d.pending())
            .map(|d| d.req)
            .collect();
        assert_eq!(kept.len(), 100, "the live calls keep their deadlines");
        // An earlier deadline goes first, and the timer is told.
        let first: Arc<Slot> = Arc::default();
        let soon = Due {
            at: start,
            ..due(7, &first)
        };
        assert!(heap.push(soon));
        assert_eq!(heap.due.peek().unwrap().req, 7);
        assert!(!heap.push(due(8, &first)));
    }
}
