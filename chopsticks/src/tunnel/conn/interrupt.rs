//! Interrupting this program's work at once (a kit tool's Ctrl-C): every
//! call in flight on every tunnel is cancelled, on its host too; calls and
//! connections started afterwards fail at once; connections being made
//! stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use chopsticks_agent::sync::Unpoisoned;

use super::Conn;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Every connection opened, while it lives (pruned as it grows).
static LIVE: Mutex<Vec<Weak<Conn>>> = Mutex::new(Vec::new());

/// Cancels every call in flight on every tunnel of this program, on its
/// host too (where the function sees
/// [`agent::cancelled`](crate::agent::cancelled), and `ops::command` kills
/// what it started), and fails them with
/// [`Error::Interrupted`](crate::Error::Interrupted); calls, transfers and
/// connections started afterwards fail the same way at once, and
/// connections being made stop. For good: this is how a program stops its
/// remote work before it exits (the kit calls it on the first Ctrl-C).
pub fn interrupt() {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let live: Vec<Arc<Conn>> = LIVE
        .lock()
        .unpoisoned()
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for conn in live {
        conn.interrupt();
    }
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Adds a connection to those [`interrupt`] reaches.
pub(crate) fn register(conn: &Arc<Conn>) {
    let mut live = LIVE.lock().unpoisoned();
    if live.len() >= 64 && live.len().is_power_of_two() {
        live.retain(|c| c.strong_count() > 0);
    }
    live.push(Arc::downgrade(conn));
    drop(live);
    // Interrupted while it was being made: its calls fail at once.
    if interrupted() {
        conn.interrupt();
    }
}
