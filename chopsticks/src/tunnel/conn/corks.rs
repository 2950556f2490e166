//! Corks across tunnels (one tunnel's cork is `send`'s): each thread's
//! burst of calls, whose corks go when the thread waits, and the process's
//! cork watcher, the one thread that writes corks nobody waited for.
//!
//! A thread's call that may be corked continues its burst when the
//! thread's previous one was made within [`BURST_GAP`] and the thread did
//! not wait in between: it is corked even
//! when it is alone in flight, so that a burst round robin over many
//! tunnels reaches each of them in one write. When the thread then waits
//! for any call ([`urge_burst`](Conn::urge_burst)), its burst is over: the
//! corks it began are written at once, all of them, since the tunnels it
//! waits for later must not wait for the replies of the first.
//!
//! The watcher looks at every cork of the process every
//! [`CORK_CHECK`], and writes those no call joined for a while (see
//! [`check_cork`](Conn::check_cork)). It goes on looking for a
//! [`CORK_CHECK`] after the last cork began, then sleeps without a bound
//! until the next cork wakes it. One thread for all tunnels: a burst over
//! ten tunnels wakes one thread, not ten (each wake-up takes the CPU from
//! the caller still issuing calls, on a small machine), and a window of
//! calls, which makes one call after each reply and urges it with the next
//! wait, costs no wake-up per call while the watcher looks.

use chopsticks_agent::sync::Unpoisoned;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::Conn;

/// How often the watcher looks at corks while calls are being corked.
pub(super) const CORK_CHECK: Duration = Duration::from_millis(1);
/// A call made within this of its thread's previous `call_async`, with
/// no wait between them, continues the thread's burst: far above the time
/// between two calls issued in a loop, even when the scheduler holds the
/// thread up a while (a wait ends a burst: a caller that waits for each
/// reply before its next call makes none).
const BURST_GAP: Duration = Duration::from_micros(100);
/// How many corks a thread's burst remembers before it first forgets
/// those already written (by the watcher, or a dropped call's urge); it
/// forgets again once the list doubled since.
const BURST_CORKS: usize = 64;

thread_local! {
    /// This thread's burst of calls.
    static BURST: RefCell<Burst> = const {
        RefCell::new(Burst {
            last: None,
            corks: Vec::new(),
            prune_at: BURST_CORKS,
        })
    };
}

/// A thread's burst of calls: when it made its last call that may be
/// corked, and the tunnels whose cork it began.
struct Burst {
    last: Option<Instant>,
    corks: Vec<Weak<Conn>>,
    /// The length of `corks` at which it forgets what it need not hold.
    prune_at: usize,
}

/// Runs `f` on this thread's burst; `None` while the thread ends (its
/// thread-locals are gone) or `f` runs already.
fn with_burst<R>(f: impl FnOnce(&mut Burst) -> R) -> Option<R> {
    BURST
        .try_with(|burst| burst.try_borrow_mut().ok().map(|mut burst| f(&mut burst)))
        .ok()
        .flatten()
}

/// Notes a call this thread makes at `now` that may be corked, and says
/// whether it continues the thread's burst.
pub(super) fn burst_call(now: Instant) -> bool {
    with_burst(|burst| {
        let continues = burst
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < BURST_GAP);
        burst.last = Some(now);
        continues
    })
    .unwrap_or(false)
}

/// Notes that this thread began `conn`'s cork, to write it when the thread
/// waits.
pub(super) fn began(conn: &Arc<Conn>) {
    let full = with_burst(|burst| {
        burst.corks.push(Arc::downgrade(conn));
        (burst.corks.len() >= burst.prune_at).then(|| std::mem::take(&mut burst.corks))
    });
    // Forgets the corks already written and a tunnel held twice (a thread
    // that drops or hands away its calls writes each cork and begins the
    // next without waiting), with the burst not borrowed: a tunnel dropped
    // here may make calls. A list of corks that are all still there waits
    // until it doubled: forgetting costs its length.
    if let Some(Some(corks)) = full {
        let mut kept = still_corked(corks);
        with_burst(|burst| {
            burst.prune_at = BURST_CORKS.max(2 * kept.len());
            burst.corks.append(&mut kept);
        });
    }
}

/// The tunnels among `corks` that are still there and corked, each once.
fn still_corked(corks: Vec<Weak<Conn>>) -> Vec<Weak<Conn>> {
    let mut seen = std::collections::HashSet::new();
    corks
        .into_iter()
        .filter(|c| c.upgrade().is_some_and(|c| c.is_corked()) && seen.insert(c.as_ptr()))
        .collect()
}

/// This thread's burst is over (it waits): writes every cork it began.
pub(crate) fn end_burst() {
    let corks = with_burst(|burst| {
        burst.last = None;
        burst.prune_at = BURST_CORKS;
        std::mem::take(&mut burst.corks)
    });
    for conn in corks.iter().flatten().filter_map(Weak::upgrade) {
        conn.urge();
    }
}

impl Conn {
    /// A caller waits for a call of this tunnel, so its thread's burst of
    /// calls is over: writes this tunnel's corked frames, then those of
    /// the other tunnels whose cork the thread began.
    pub(crate) fn urge_burst(&self) {
        self.urge();
        end_burst();
    }
}

/// The process's cork watcher.
struct Watcher {
    /// The tunnels whose cork began since the watcher last looked, or that
    /// were still corked then.
    corks: Vec<Weak<Conn>>,
    run: Run,
    /// When the last cork began.
    last: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    NotStarted,
    Looking,
    /// Waits on [`LOOK`] for the next cork.
    Asleep,
    /// No thread could be started: frames are not corked.
    Failed,
}

static WATCHER: Mutex<Watcher> = Mutex::new(Watcher {
    corks: Vec::new(),
    run: Run::NotStarted,
    last: None,
});
/// Wakes the watcher.
static LOOK: Condvar = Condvar::new();

/// Starts the watcher, if it is not running: when a tunnel opens, so that
/// the first burst does not pay for a thread.
pub(super) fn start() {
    let mut watcher = WATCHER.lock().unpoisoned();
    started(&mut watcher);
}

/// Starts the watcher if it never was; says whether it runs.
fn started(watcher: &mut Watcher) -> bool {
    if watcher.run == Run::NotStarted {
        let spawned = std::thread::Builder::new()
            .name("chopsticks-corks".into())
            .spawn(look);
        watcher.run = match spawned {
            Ok(_) => Run::Looking,
            Err(_) => Run::Failed,
        };
    }
    watcher.run != Run::Failed
}

/// Hands a new cork to the watcher (starting it if need be); `false` when
/// no watcher runs (the caller writes its frames at once). A tunnel the
/// watcher has on its list already costs nothing more: a window of calls
/// begins a cork with each call.
pub(super) fn watch(conn: &Arc<Conn>) -> bool {
    if conn.watched.swap(true, Ordering::SeqCst) {
        return true;
    }
    let mut watcher = WATCHER.lock().unpoisoned();
    if !started(&mut watcher) {
        conn.watched.store(false, Ordering::SeqCst);
        return false;
    }
    if watcher.run == Run::Asleep {
        watcher.run = Run::Looking;
        LOOK.notify_one();
    }
    watcher.corks.push(Arc::downgrade(conn));
    watcher.last = Some(Instant::now());
    true
}

/// The watcher's thread: looks at the corks until none began for a
/// [`CORK_CHECK`], sleeps until the next, forever.
fn look() {
    let mut watcher = WATCHER.lock().unpoisoned();
    loop {
        let recent = watcher.last.is_some_and(|at| at.elapsed() < CORK_CHECK);
        if watcher.corks.is_empty() && !recent {
            watcher.run = Run::Asleep;
            while watcher.run == Run::Asleep {
                watcher = LOOK.wait(watcher).unpoisoned();
            }
            continue;
        }
        let corks = std::mem::take(&mut watcher.corks);
        drop(watcher);
        // Looked at (and tunnels dropped) without the lock: a cork of
        // another thread never waits for this.
        let now = Instant::now();
        let mut next = now + CORK_CHECK;
        let mut kept = Vec::new();
        for weak in corks {
            let Some(conn) = weak.upgrade() else { continue };
            // A panic here (our bug) fails the tunnel's calls, as one on its
            // I/O thread does, instead of ending the watcher: the corks of
            // every tunnel would wait for a caller then.
            let looked = panic::catch_unwind(AssertUnwindSafe(|| conn.check_cork(now)));
            let due = match looked {
                Ok(due) => due,
                Err(panic) => {
                    let message = chopsticks_agent::panic_message(&*panic);
                    conn.kill();
                    conn.shut(
                        format!("the cork watcher panicked ({message}); the agent was stopped"),
                        Vec::new(),
                    );
                    None
                }
            };
            if let Some(due) = due {
                next = next.min(due);
                kept.push(weak);
                continue;
            }
            // Off the list; a cork begun meanwhile, which found the tunnel
            // on it and did not hand itself over, stays on.
            conn.watched.store(false, Ordering::SeqCst);
            if conn.is_corked() && !conn.watched.swap(true, Ordering::SeqCst) {
                kept.push(weak);
            }
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        watcher = WATCHER.lock().unpoisoned();
        watcher.corks.append(&mut kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_within_the_gap_continues_the_burst_and_a_pause_ends_it() {
        let start = Instant::now();
        assert!(!burst_call(start), "a thread's first call begins no burst");
        assert!(burst_call(start + BURST_GAP / 2));
        assert!(burst_call(start + BURST_GAP));
        assert!(!burst_call(start + BURST_GAP * 3));
    }
}
