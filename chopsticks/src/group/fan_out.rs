//! Working for many hosts at once: a bounded pool of threads for what
//! blocks (connecting), and one waiting thread for calls in flight, woken
//! by each as it completes (their deadlines are their tunnels').

use chopsticks_agent::sync::Unpoisoned;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::{Error, Result};
use crate::tunnel::Pending;

/// Runs `job(i)` for `i` in `0..count` on at most `workers` threads;
/// results in order. A panicking job fails its item only (`panicked` makes
/// its error). A thread that cannot be started leaves its items to the
/// others; when none starts, this thread does the work itself.
pub(super) fn on_threads<T: Send>(
    count: usize,
    workers: usize,
    job: impl Fn(usize) -> Result<T> + Sync,
    panicked: impl Fn(usize, String) -> Error + Sync,
) -> Vec<Result<T>> {
    let slots: Vec<Mutex<Option<Result<T>>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(i)))
                .unwrap_or_else(|panic| Err(panicked(i, chopsticks_agent::panic_message(&*panic))));
            *slots[i].lock().unpoisoned() = Some(result);
        };
        let started = (0..workers.min(count))
            .take_while(|_| std::thread::Builder::new().spawn_scoped(s, work).is_ok())
            .count();
        if started == 0 {
            // Not even one thread (the process is at its limit): do the
            // work here, one item at a time.
            work();
        }
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            let result = slot.into_inner().unpoisoned();
            // Every item was taken by a worker that stored its result, or
            // the worker's thread was lost with it.
            result.unwrap_or_else(|| Err(panicked(i, "its worker thread ended".into())))
        })
        .collect()
}

/// Which calls completed since the waiter last looked.
#[derive(Default)]
struct Latch {
    ready: Mutex<Vec<usize>>,
    wake: Condvar,
}

/// Wakes the latch with the index of one call.
struct Ping {
    latch: Arc<Latch>,
    index: usize,
}

impl Wake for Ping {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.latch.ready.lock().unpoisoned().push(self.index);
        self.latch.wake.notify_one();
    }
}

/// Waits for every call in `calls` on this thread, however many there are,
/// calling `done(i, result)` as each completes (in any order). A call ends
/// at its tunnel's deadline for it at the latest.
pub(super) fn collect<T: serde::de::DeserializeOwned>(
    calls: Vec<Option<Pending<T>>>,
    mut done: impl FnMut(usize, Result<T>),
) {
    let latch = Arc::new(Latch::default());
    let mut calls: Vec<Option<(Pending<T>, Waker)>> = calls
        .into_iter()
        .enumerate()
        .map(|(index, call)| {
            call.map(|p| {
                let ping = Arc::new(Ping {
                    latch: Arc::clone(&latch),
                    index,
                });
                (p, Waker::from(ping))
            })
        })
        .collect();
    let mut left: usize = calls.iter().filter(|c| c.is_some()).count();
    let mut look: Vec<usize> = (0..calls.len()).collect();
    while left > 0 {
        for i in look.drain(..) {
            let Some((pending, waker)) = &mut calls[i] else {
                continue;
            };
            let mut cx = Context::from_waker(waker);
            if let Poll::Ready(result) = Pin::new(pending).poll(&mut cx) {
                calls[i] = None;
                left -= 1;
                done(i, result);
            }
        }
        if left == 0 {
            break;
        }
        let mut ready = latch.ready.lock().unpoisoned();
        while ready.is_empty() {
            ready = latch.wake.wait(ready).unpoisoned();
        }
        look.append(&mut ready);
    }
}
