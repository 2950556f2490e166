//! A transfer running on a thread of its own: wait for it, or drop it to
//! cancel it (the host then writes nothing and removes its temporary file).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::Transfer;
use crate::error::{Error, Result};
use crate::tunnel::Tunnel;

/// Cancels a transfer: whichever of its calls is in flight ends at once.
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
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = stop;
        if self.cancelled.load(Ordering::SeqCst) {
            if let Some(stop) = current.take() {
                stop();
            }
        }
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let stop = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
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

/// A [`put`](Tunnel::put_async) or [`fetch`](Tunnel::fetch_async) running
/// on a thread of its own. [`wait`](TransferHandle::wait) for its result;
/// dropping the handle cancels the transfer: the host stops, writes nothing
/// and removes its temporary file (a fetch likewise on this machine), and
/// the drop returns once the transfer stopped. Other calls on the tunnel go
/// on meanwhile.
#[must_use = "dropping the handle cancels the transfer"]
pub struct TransferHandle<'t> {
    host: String,
    cancel: Arc<Cancel>,
    thread: Option<JoinHandle<Result<Transfer>>>,
    /// Why no thread runs it.
    failed: Option<Error>,
    _tunnel: PhantomData<&'t Tunnel>,
}

impl std::fmt::Debug for TransferHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandle")
            .field("host", &self.host)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<'t> TransferHandle<'t> {
    /// Runs `transfer` on a thread with an alias of `tunnel`.
    pub(crate) fn start(
        tunnel: &'t Tunnel,
        transfer: impl FnOnce(&Tunnel, &Cancel) -> Result<Transfer> + Send + 'static,
    ) -> TransferHandle<'t> {
        let cancel = Arc::new(Cancel::default());
        let alias = tunnel.alias();
        let theirs = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name(format!("chopsticks-transfer-{}", tunnel.host()))
            .spawn(move || transfer(&alias, &theirs));
        let (thread, failed) = match thread {
            Ok(thread) => (Some(thread), None),
            Err(e) => (
                None,
                Some(Error::Controller {
                    host: tunnel.host().to_owned(),
                    function: None,
                    message: format!("cannot start a thread for the transfer: {e}"),
                }),
            ),
        };
        TransferHandle {
            host: tunnel.host().to_owned(),
            cancel,
            thread,
            failed,
            _tunnel: PhantomData,
        }
    }

    /// Whether the transfer is over (`wait` returns at once).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the transfer's result.
    ///
    /// # Errors
    /// As [`Tunnel::put`].
    pub fn wait(mut self) -> Result<Transfer> {
        let thread = self.thread.take();
        match (thread, self.failed.take()) {
            (Some(thread), _) => thread.join().unwrap_or_else(|panic| {
                Err(Error::Controller {
                    host: self.host.clone(),
                    function: None,
                    message: format!(
                        "the transfer's thread panicked: {}",
                        chopsticks_agent::panic_message(&*panic)
                    ),
                })
            }),
            (None, Some(e)) => Err(e),
            (None, None) => Err(Error::Controller {
                host: self.host.clone(),
                function: None,
                message: "the transfer was waited for twice".into(),
            }),
        }
    }
}

impl Drop for TransferHandle<'_> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.cancel.cancel();
            let _ = thread.join();
        }
    }
}
