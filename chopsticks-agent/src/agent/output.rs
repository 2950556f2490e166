//! The agent's one writer to the controller: whole frames, in order.
//!
//! Replies to a burst of requests are held and written together: while
//! the reader has another whole request buffered, its reply waits in
//! memory ([`Frames::hold`]), and the replies go out in one write before
//! the reader waits for input again, when a call turns slow (the
//! watchdog), or with any other frame. A thousand pipelined calls then
//! cost the pipe, sshd and the network a few writes, not a thousand.

use crate::sync::Unpoisoned;
use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Held replies are written once they reach this size.
const HOLD_MAX: usize = 64 * 1024;

/// The protocol's output; replies and log records share it.
pub(crate) struct Frames(Mutex<Out>);

/// This agent's output, for the panic hook: a panic that aborts the
/// process (a program built with `panic = "abort"`) first writes the
/// replies held for calls that finished, so they are not lost with it.
static OUTPUT: OnceLock<Weak<Frames>> = OnceLock::new();

/// Writes the held replies of this process's agent, unless another
/// thread is writing: what the panic hook calls.
pub(crate) fn release_on_panic() {
    if let Some(frames) = OUTPUT.get().and_then(Weak::upgrade) {
        let _ = frames.try_release();
    }
}

struct Out {
    file: File,
    /// Whole frames not written yet, oldest first.
    held: Vec<u8>,
}

impl Frames {
    pub(crate) fn new(file: File) -> Arc<Frames> {
        let frames = Arc::new(Frames(Mutex::new(Out {
            file,
            held: Vec::new(),
        })));
        let _ = OUTPUT.set(Arc::downgrade(&frames));
        frames
    }

    /// Writes the held frames, then `bytes` (whole frames), and flushes. A
    /// failed write means the controller is gone; the reader then sees EOF
    /// and the agent ends.
    pub(crate) fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unpoisoned();
        if out.held.is_empty() {
            out.file.write_all(bytes)?;
        } else {
            out.held.extend_from_slice(bytes);
            out.write_held()?;
        }
        out.file.flush()
    }

    /// Keeps `frame` to write with the next frames (see the module's docs);
    /// writes them all once they are [`HOLD_MAX`] bytes.
    pub(crate) fn hold(&self, frame: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unpoisoned();
        out.held.extend_from_slice(frame);
        if out.held.len() >= HOLD_MAX {
            out.write_held()?;
        }
        Ok(())
    }

    /// Writes the held frames, if any, unless another thread is writing
    /// (or holding) right now: the watchdog's, which must not wait behind a
    /// blocked write. A writer writes the held frames before its own; a
    /// reader holding one more is seen at the next tick.
    pub(crate) fn try_release(&self) -> io::Result<()> {
        match self.0.try_lock() {
            Ok(mut out) if !out.held.is_empty() => out.write_held(),
            _ => Ok(()),
        }
    }

    /// As [`try_release`](Frames::try_release), for the watchdog's ticks:
    /// writes the held frames when some were held at the tick before
    /// (`stale`) too, so a pipeline of calls that are each fast, but not
    /// fast enough for the reader to run dry, waits at most two ticks for
    /// its replies.
    pub(crate) fn release_stale(&self, stale: &mut bool) -> io::Result<()> {
        let Ok(mut out) = self.0.try_lock() else {
            return Ok(());
        };
        match (out.held.is_empty(), *stale) {
            (true, _) => {
                *stale = false;
                Ok(())
            }
            (false, false) => {
                *stale = true;
                Ok(())
            }
            (false, true) => {
                *stale = false;
                out.write_held()
            }
        }
    }

    /// Writes the held frames, if any.
    pub(crate) fn release(&self) -> io::Result<()> {
        let mut out = self.0.lock().unpoisoned();
        if out.held.is_empty() {
            return Ok(());
        }
        out.write_held()
    }
}

impl Out {
    fn write_held(&mut self) -> io::Result<()> {
        let written = self.file.write_all(&self.held);
        self.held.clear();
        // One big reply in a burst must not keep its memory for the
        // agent's lifetime.
        self.held.shrink_to(2 * HOLD_MAX);
        written
    }
}
