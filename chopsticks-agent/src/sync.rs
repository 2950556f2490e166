//! Locks that a panic does not poison for good.
//!
//! A thread of chopsticks that panics while holding a lock (a user's
//! callback, a logger) must not take the tunnel, the agent or the output
//! thread down with it: every state behind our locks is left consistent
//! between statements, so the data of a poisoned lock is used as it is.

use std::sync::{LockResult, PoisonError};

/// [`unpoisoned`](Unpoisoned::unpoisoned) for what `lock`, `wait`,
/// `wait_timeout`, `into_inner` and `get_mut` return.
pub trait Unpoisoned<G> {
    /// The guard (or value), whether or not a panic poisoned the lock.
    fn unpoisoned(self) -> G;
}

impl<G> Unpoisoned<G> for LockResult<G> {
    fn unpoisoned(self) -> G {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Unpoisoned;
    use std::sync::Mutex;

    #[test]
    fn a_panic_while_locked_leaves_the_data_usable() {
        let m = Mutex::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _g = m.lock().unpoisoned();
            panic!("poison it");
        });
        assert!(m.is_poisoned());
        *m.lock().unpoisoned() += 1;
        assert_eq!(m.into_inner().unpoisoned(), 2);
    }
}
