//! The agent's worker threads: every call runs on its own thread, taken from
//! a pool that grows whenever all workers are busy, so a slow call never
//! blocks a fast one and steady traffic creates no threads.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Idle workers beyond this many exit after [`IDLE_EXIT`].
const KEEP_IDLE: usize = 4;
const IDLE_EXIT: Duration = Duration::from_secs(10);

pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    idle: usize,
    workers: usize,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    idle: 0,
                    workers: 0,
                }),
                wake: Condvar::new(),
            }),
        }
    }

    /// Runs `job` on a worker. When no worker is free and no thread can be
    /// started, the job waits for the next free worker; only when there is
    /// no worker at all is it handed back.
    pub fn run(&self, job: Job) -> Result<(), Job> {
        let mut state = self.shared.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            drop(state);
            self.shared.wake.notify_one();
            return Ok(());
        }
        state.workers += 1;
        drop(state);
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name("chopsticks-call".into())
            .spawn(move || shared.work());
        if spawned.is_err() {
            let mut state = self.shared.lock();
            state.workers -= 1;
            if state.workers == 0 {
                return Err(state.queue.pop_back().expect("the job just queued"));
            }
        }
        Ok(())
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .wake
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() && state.idle >= KEEP_IDLE {
                state.workers -= 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_blocked_job_does_not_block_the_next() {
        let pool = Pool::new();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let first_done = done_tx.clone();
        pool.run(Box::new(move || {
            release_rx.recv().unwrap();
            first_done.send("slow").unwrap();
        }))
        .ok()
        .unwrap();
        for _ in 0..50 {
            let tx = done_tx.clone();
            pool.run(Box::new(move || tx.send("fast").unwrap()))
                .ok()
                .unwrap();
        }
        for _ in 0..50 {
            assert_eq!(
                done_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
                "fast"
            );
        }
        release_tx.send(()).unwrap();
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "slow"
        );
    }
}
