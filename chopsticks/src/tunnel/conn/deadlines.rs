//! The deadlines of one tunnel's calls, blocking and awaited alike: a heap
//! the tunnel's I/O thread sleeps on. Entries are never removed early: a
//! call that finished, or whose deadline changed, leaves a stale entry that
//! is skipped when it comes up, and swept out whenever the heap doubles.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Below this many entries the heap is not swept.
const SWEEP_MIN: usize = 1024;

pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The heap's size that triggers the next sweep.
    sweep_at: usize,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            sweep_at: SWEEP_MIN,
        }
    }
}

impl Deadlines {
    /// Adds call `req`'s deadline `at`; returns whether it is now the
    /// earliest (the I/O thread must be woken to sleep less). `live` says
    /// whether an entry still counts, for the sweep.
    pub(super) fn push(
        &mut self,
        at: Instant,
        req: u64,
        live: impl Fn(Instant, u64) -> bool,
    ) -> bool {
        let earliest = self.next().is_none_or(|first| at < first);
        self.heap.push(Reverse((at, req)));
        if self.heap.len() >= self.sweep_at {
            // Amortized: each sweep at least halves the heap, or the next
            // one waits for it to double.
            self.heap.retain(|Reverse((at, req))| live(*at, *req));
            self.sweep_at = (self.heap.len() * 2).max(SWEEP_MIN);
        }
        earliest
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(due)| due)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_of_finished_calls_are_swept_out() {
        let mut deadlines = Deadlines::default();
        let start = Instant::now();
        let live = |_: Instant, req: u64| req < 100;
        for req in 0..1_000_100u64 {
            deadlines.push(start + Duration::from_secs(3600 + req), req, live);
        }
        assert!(deadlines.len() < 2 * SWEEP_MIN, "{} kept", deadlines.len());
        // An earlier deadline goes first, and the pusher is told.
        assert!(deadlines.push(start, 7, live));
        assert!(!deadlines.push(start + Duration::from_secs(1), 8, live));
        assert_eq!(deadlines.pop_due(start), Some((start, 7)));
        assert_eq!(deadlines.pop_due(start), None);
        let mut kept = 0;
        while deadlines
            .pop_due(start + Duration::from_secs(1 << 30))
            .is_some()
        {
            kept += 1;
        }
        assert!(kept >= 100, "the live calls keep their deadlines");
    }
}
