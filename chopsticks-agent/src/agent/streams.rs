//! The agent's end of call streams: the bytes the controller sends a call
//! (`Request::Data`, read by the function through [`InputStream`]) and the bytes
//! a function sends back before its reply ([`OutputStream`]), each under credit
//! (`crate::flow`).
//!
//! The reader thread files what arrives into the call's [`CallStreams`];
//! the function's thread takes it out. A stream the controller cancels
//! fails at the function's end with an error, so the function cleans up
//! and returns.

use crate::sync::Unpoisoned;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::output::Frames;
use crate::flow::{Chunks, Credit, Grants};
use crate::wire::{self, Request, Response, DATA_CHUNK};

/// The streams of the calls running now, by request ID.
pub(crate) struct Table {
    calls: Mutex<HashMap<u64, Arc<CallStreams>>>,
    frames: Arc<Frames>,
}

/// One call's streams.
pub(crate) struct CallStreams {
    req: u64,
    input: bool,
    output: bool,
    frames: Arc<Frames>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Input that arrived and was not read yet.
    chunks: Chunks,
    grants: Grants,
    /// The controller sent `End`.
    ended: bool,
    /// The controller sent `Cancel`.
    cancelled: bool,
    credit: Credit,
    input_taken: bool,
    output_taken: bool,
}

impl Table {
    pub(crate) fn new(frames: Arc<Frames>) -> Table {
        Table {
            calls: Mutex::default(),
            frames,
        }
    }

    fn calls(&self) -> MutexGuard<'_, HashMap<u64, Arc<CallStreams>>> {
        self.calls.lock().unpoisoned()
    }

    fn get(&self, req: u64) -> Option<Arc<CallStreams>> {
        self.calls().get(&req).cloned()
    }

    /// Registers the streams of call `req`, before it runs.
    pub(crate) fn open(&self, req: u64, input: bool, output: bool) -> Arc<CallStreams> {
        let streams = Arc::new(CallStreams {
            req,
            input,
            output,
            frames: Arc::clone(&self.frames),
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        self.calls().insert(req, Arc::clone(&streams));
        streams
    }

    /// The call ended: what still arrives for it is dropped, and a thread
    /// of the call still reading its input or waiting to write (a helper
    /// the function left behind) is woken with an error instead of waiting
    /// for frames that will never come.
    pub(crate) fn close(&self, req: u64) {
        if let Some(streams) = self.calls().remove(&req) {
            streams.lock().cancelled = true;
            streams.changed.notify_all();
        }
    }

    /// Acts on a stream frame from the controller. A frame for a call that
    /// ended is dropped (the controller could not know yet).
    ///
    /// # Errors
    /// When the controller sent past its credit: the protocol is broken.
    pub(crate) fn handle(&self, request: &Request<'_>) -> Result<(), String> {
        let req = match request {
            Request::Data { req, .. }
            | Request::End { req }
            | Request::Credit { req, .. }
            | Request::Cancel { req } => *req,
            Request::Call { .. } | Request::Shutdown => return Ok(()),
        };
        let Some(streams) = self.get(req) else {
            return Ok(());
        };
        {
            let mut state = streams.lock();
            match request {
                Request::Data { bytes, .. } => {
                    state
                        .grants
                        .receive(bytes.len())
                        .map_err(|e| format!("call {req}: {e}"))?;
                    state.chunks.push(bytes);
                }
                Request::End { .. } => state.ended = true,
                Request::Credit { bytes, .. } => state.credit.grant(*bytes),
                _ => state.cancelled = true,
            }
        }
        streams.changed.notify_all();
        Ok(())
    }
}

impl CallStreams {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unpoisoned()
    }

    fn cancelled() -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the controller cancelled the call (its deadline passed or it was dropped)",
        )
    }
}

thread_local! {
    /// The streams of the call running on this thread.
    static CURRENT: RefCell<Option<Arc<CallStreams>>> = const { RefCell::new(None) };
}

/// Makes `streams` the current call's while `run` runs.
pub(crate) fn with_current<T>(streams: Option<Arc<CallStreams>>, run: impl FnOnce() -> T) -> T {
    let had = streams.is_some();
    if had {
        CURRENT.with(|c| *c.borrow_mut() = streams);
    }
    let out = run();
    if had {
        CURRENT.with(|c| c.borrow_mut().take());
    }
    out
}

fn current(what: &str, caller: &str) -> io::Result<Arc<CallStreams>> {
    CURRENT.with(|c| c.borrow().clone()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotConnected,
            format!(
                "no {what} stream: `{caller}` works only on the thread of a #[remote] \
                     call that was made with one"
            ),
        )
    })
}

/// The input stream of the `#[remote]` call running on this thread: the
/// bytes the controller streams to it (as `Tunnel::put` does). It can be
/// taken once; it may then move to another thread.
///
/// # Errors
/// When this thread runs no call, the call was made without an input
/// stream, or the stream was taken already.
pub fn input() -> io::Result<InputStream> {
    let streams = current("input", "chopsticks::agent::stream::input")?;
    {
        let mut state = streams.lock();
        if !streams.input || state.input_taken {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "this call has no input stream, or it was taken already",
            ));
        }
        state.input_taken = true;
    }
    Ok(InputStream { streams })
}

/// The output stream of the `#[remote]` call running on this thread: bytes
/// sent to the controller before the reply (as `Tunnel::fetch` takes them).
/// Flush it, or drop it, before the function returns.
///
/// # Errors
/// When this thread runs no call, the controller does not take an output
/// stream for this call, or the stream was taken already.
pub fn output() -> io::Result<OutputStream> {
    let streams = current("output", "chopsticks::agent::stream::output")?;
    {
        let mut state = streams.lock();
        if !streams.output || state.output_taken {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "this call has no output stream, or it was taken already",
            ));
        }
        state.output_taken = true;
    }
    Ok(OutputStream {
        streams,
        pending: Vec::with_capacity(DATA_CHUNK),
    })
}

/// What the controller streams to a call; reads end at the stream's end.
pub struct InputStream {
    streams: Arc<CallStreams>,
}

impl std::fmt::Debug for InputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputStream")
            .field("req", &self.streams.req)
            .finish()
    }
}

impl InputStream {
    /// What says whether the controller still wants the call (it did not
    /// cancel it): check it before a step that cannot be undone.
    pub fn wanted(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let streams = Arc::clone(&self.streams);
        move || !streams.lock().cancelled
    }
}

impl Read for InputStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let streams = &self.streams;
        let (n, grant) = {
            let mut state = streams.lock();
            loop {
                if state.cancelled {
                    return Err(CallStreams::cancelled());
                }
                if !state.chunks.is_empty() {
                    break;
                }
                if state.ended {
                    return Ok(0);
                }
                state = streams.changed.wait(state).unpoisoned();
            }
            let n = state.chunks.read_into(buf);
            (n, state.grants.consume(n))
        };
        if let Some(bytes) = grant {
            let req = streams.req;
            let frame = wire::encode_frame(&Response::Credit { req, bytes })?;
            streams.frames.send(&frame)?;
        }
        Ok(n)
    }
}

/// Bytes a call streams to the controller before its reply.
pub struct OutputStream {
    streams: Arc<CallStreams>,
    /// Written and not sent yet (up to a chunk).
    pending: Vec<u8>,
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputStream")
            .field("req", &self.streams.req)
            .finish()
    }
}

impl OutputStream {
    /// Sends what is pending, as credit allows (waiting for more).
    fn send_pending(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut sent = 0;
        let result = loop {
            if sent == pending.len() {
                break Ok(());
            }
            match self.send(&pending[sent..]) {
                Ok(n) => sent += n,
                Err(e) => break Err(e),
            }
        };
        self.pending = pending;
        self.pending.clear();
        result
    }

    /// Sends what credit allows of `bytes` (waiting for some) in one frame.
    fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        let streams = &self.streams;
        let n = {
            let mut state = streams.lock();
            loop {
                if state.cancelled {
                    return Err(CallStreams::cancelled());
                }
                match state.credit.spend(bytes.len()) {
                    0 => state = streams.changed.wait(state).unpoisoned(),
                    n => break n,
                }
            }
        };
        let frame = wire::encode_frame(&Response::Data {
            req: streams.req,
            bytes: &bytes[..n],
        })?;
        streams.frames.send(&frame)?;
        Ok(n)
    }
}

impl Write for OutputStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() >= DATA_CHUNK / 2 {
            // Large: framed straight from `buf`, after what is pending.
            self.send_pending()?;
            return self.send(&buf[..buf.len().min(DATA_CHUNK)]);
        }
        if self.pending.len() == DATA_CHUNK {
            self.send_pending()?;
        }
        let n = buf.len().min(DATA_CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

impl Drop for OutputStream {
    fn drop(&mut self) {
        let _ = self.send_pending();
    }
}
