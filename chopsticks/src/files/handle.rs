//! A transfer running on a thread of its own: wait for it, or drop it to
//! cancel it (the host then writes nothing and removes its temporary file).

use chopsticks_agent::sync::Unpoisoned;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::Transfer;
use crate::error::{Error, Result};
use crate::group::GroupResult;

/// Cancels one host's transfer: whichever of its calls is in flight ends
/// at once.
#[derive(Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    /// What ends the call in flight.
    current: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Cancel {
    /// The call in flight is the one `stop` ends; if the transfer was
    /// cancelled already, it ends now.
    pub(crate) fn watch(&self, stop: Option<Box<dyn Fn() + Send>>) {
        let mut current = self.current.lock().unpoisoned();
        *current = stop;
        if self.cancelled.load(Ordering::SeqCst) {
            if let Some(stop) = current.take() {
                stop();
            }
        }
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let stop = self.current.lock().unpoisoned().take();
        if let Some(stop) = stop {
            stop();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Fails when the transfer was cancelled (checked between its steps).
    pub(crate) fn check(&self, host: &str) -> Result<()> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Error::Controller {
                host: host.to_owned(),
                function: None,
                message: "the transfer was cancelled (its handle was dropped)".into(),
            });
        }
        Ok(())
    }
}

/// What a spawned transfer gives: one host's `Result<Transfer>`, or a
/// group's `GroupResult<Transfer>`.
pub trait TransferOutcome: Send + 'static + private::Sealed {}

impl TransferOutcome for Result<Transfer> {}
impl TransferOutcome for GroupResult<Transfer> {}

pub(crate) mod private {
    use super::*;

    pub trait Sealed: Sized {
        /// The outcome when the transfer's thread could not run it (or
        /// panicked): every host failed with `message`.
        fn lost(hosts: &[String], message: &str) -> Self;
    }

    fn lost(host: &str, message: &str) -> Error {
        Error::Controller {
            host: host.to_owned(),
            function: None,
            message: message.to_owned(),
        }
    }

    impl Sealed for Result<Transfer> {
        fn lost(hosts: &[String], message: &str) -> Self {
            Err(lost(hosts.first().map_or("", String::as_str), message))
        }
    }

    impl Sealed for GroupResult<Transfer> {
        fn lost(hosts: &[String], message: &str) -> Self {
            GroupResult::new(
                hosts
                    .iter()
                    .map(|h| (h.clone(), Err(lost(h, message))))
                    .collect(),
            )
        }
    }
}

/// A put or fetch running on a thread of its own, made by the `spawn` of a
/// [`Put`](crate::Put) or [`Fetch`](crate::Fetch): `R` is a tunnel's
/// `Result<Transfer>` or a group's `GroupResult<Transfer>`.
/// [`wait`](TransferHandle::wait) for the result; dropping the handle
/// cancels the transfer: each host stops, writes nothing and removes its
/// temporary file (a fetch likewise on this machine), and the drop returns
/// once every host stopped. Other calls on the tunnels go on meanwhile.
#[must_use = "dropping the handle cancels the transfer"]
pub struct TransferHandle<'t, R: TransferOutcome = Result<Transfer>> {
    hosts: Vec<String>,
    cancels: Arc<[Cancel]>,
    thread: Option<JoinHandle<R>>,
    /// Why no thread runs it.
    failed: Option<String>,
    _borrows: PhantomData<&'t ()>,
}

impl<R: TransferOutcome> std::fmt::Debug for TransferHandle<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandle")
            .field("hosts", &self.hosts)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<'t, R: TransferOutcome> TransferHandle<'t, R> {
    /// Runs `transfer` on a thread of its own, with one [`Cancel`] per
    /// host; what it works on must be owned by it (an alias of a tunnel, a
    /// clone of a group), while the handle borrows the originals for `'t`.
    pub(crate) fn start(
        hosts: Vec<String>,
        transfer: impl FnOnce(&[Cancel]) -> R + Send + 'static,
    ) -> TransferHandle<'t, R> {
        let cancels: Arc<[Cancel]> = hosts.iter().map(|_| Cancel::default()).collect();
        let theirs = Arc::clone(&cancels);
        let name = match hosts.as_slice() {
            [one] => format!("chopsticks-transfer-{one}"),
            _ => format!("chopsticks-transfer-{}-hosts", hosts.len()),
        };
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || transfer(&theirs));
        let (thread, failed) = match thread {
            Ok(thread) => (Some(thread), None),
            Err(e) => (
                None,
                Some(format!("cannot start a thread for the transfer: {e}")),
            ),
        };
        TransferHandle {
            hosts,
            cancels,
            thread,
            failed,
            _borrows: PhantomData,
        }
    }

    /// Whether the transfer is over (`wait` returns at once).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the transfer's result.
    ///
    /// # Errors
    /// As the spec's `run`: [`Error::Transfer`] and the errors of a call,
    /// for each host.
    pub fn wait(mut self) -> R {
        match (self.thread.take(), self.failed.take()) {
            (Some(thread), _) => thread.join().unwrap_or_else(|panic| {
                let message = format!(
                    "the transfer's thread panicked: {}",
                    chopsticks_agent::panic_message(&*panic)
                );
                R::lost(&self.hosts, &message)
            }),
            (None, Some(message)) => R::lost(&self.hosts, &message),
            (None, None) => R::lost(&self.hosts, "the transfer was waited for twice"),
        }
    }
}

impl<R: TransferOutcome> Drop for TransferHandle<'_, R> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            for cancel in self.cancels.iter() {
                cancel.cancel();
            }
            let _ = thread.join();
        }
    }
}
