//! What goes to the agent: frames written whole and in order, at once
//! when the agent takes them, else queued for the I/O thread, which
//! writes them as the agent reads (`flush`).

use chopsticks_agent::sync::Unpoisoned;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use super::Conn;
use crate::wire::{self, Request};

/// The request ID of queued frames that are sent whatever became of their
/// call (credit, cancels): request IDs start at 1.
pub(super) const CONTROL: u64 = 0;

/// What goes to the agent: frames are written whole, in order.
pub(super) struct Outgoing {
    /// `None` once the tunnel is closing.
    pub(super) to_agent: Option<File>,
    /// Frames not (fully) written yet, oldest first.
    queue: VecDeque<Queued>,
}

impl Outgoing {
    pub(super) fn new(to_agent: File) -> Outgoing {
        Outgoing {
            to_agent: Some(to_agent),
            queue: VecDeque::new(),
        }
    }
}

struct Queued {
    /// The call the frame belongs to; [`CONTROL`] for frames sent even
    /// after their call ended.
    req: u64,
    frame: Vec<u8>,
    /// How much of `frame` is written.
    written: usize,
}

impl Conn {
    pub(super) fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        self.out.lock().unpoisoned()
    }

    /// Sends bytes of call `req`'s input stream (within the credit its
    /// [`Pipe`] gave). Not sent if the call ends before it is written.
    pub(crate) fn send_data(&self, req: u64, bytes: &[u8]) {
        self.send_frame(req, &Request::Data { req, bytes });
    }

    /// Ends call `req`'s input stream.
    pub(crate) fn send_end(&self, req: u64) {
        self.send_frame(req, &Request::End { req });
    }

    /// Grants the agent `bytes` more credit on call `req`'s output.
    pub(crate) fn send_credit(&self, req: u64, bytes: u64) {
        self.send_frame(CONTROL, &Request::Credit { req, bytes });
    }

    /// Tells the agent nobody waits for call `req` any more, so that its
    /// streams fail there and the function stops.
    pub(super) fn send_cancel(&self, req: u64) {
        self.send_frame(CONTROL, &Request::Cancel { req });
    }

    fn send_frame(&self, queued_as: u64, request: &Request<'_>) {
        // Stream frames are small and well-formed: encoding cannot fail.
        if let Ok(frame) = wire::encode_frame(request) {
            if self.send(queued_as, frame) {
                self.wake();
            }
        }
    }

    /// Writes `frame` if the agent takes it now, or queues it for the I/O
    /// thread. Returns whether the I/O thread must be woken to write.
    pub(super) fn send(&self, req: u64, frame: Vec<u8>) -> bool {
        let mut out = self.outgoing();
        let Outgoing { to_agent, queue } = &mut *out;
        // Closing: the call fails with the tunnel.
        let Some(to_agent) = to_agent else {
            return false;
        };
        let mut written = 0;
        if queue.is_empty() {
            while written < frame.len() {
                match to_agent.write(&frame[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // The agent is gone: the I/O thread sees its output end
                    // and fails every waiting call, this one included.
                    Err(_) => return false,
                }
            }
            if written == frame.len() {
                return false;
            }
        }
        let first = queue.is_empty();
        queue.push_back(Queued {
            req,
            frame,
            written,
        });
        self.queued.store(true, Ordering::SeqCst);
        first
    }

    /// Writes queued frames until the agent stops taking them. Frames of
    /// calls nobody waits for any more (timed out, dropped) are not sent.
    pub(super) fn flush(&self) {
        let mut out = self.outgoing();
        let Outgoing { to_agent, queue } = &mut *out;
        let Some(to_agent) = to_agent else {
            queue.clear();
            self.queued.store(false, Ordering::SeqCst);
            return;
        };
        while let Some(next) = queue.front_mut() {
            if next.written == 0
                && next.req != CONTROL
                && !self.state().waiting.contains_key(&next.req)
            {
                queue.pop_front();
                continue;
            }
            match to_agent.write(&next.frame[next.written..]) {
                Ok(n) => {
                    next.written += n;
                    if next.written == next.frame.len() {
                        queue.pop_front();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // Gone: the end of its output fails the calls.
                Err(_) => {
                    queue.clear();
                    break;
                }
            }
        }
        self.queued.store(false, Ordering::SeqCst);
    }

    /// Stops sending: the queue is dropped and the agent's input taken,
    /// with whether a frame was half written (a Shutdown after it would
    /// read as garbage).
    pub(super) fn stop_sending(&self) -> (Option<File>, bool) {
        let mut out = self.outgoing();
        let midframe = out.queue.front().is_some_and(|q| q.written > 0);
        out.queue.clear();
        self.queued.store(false, Ordering::SeqCst);
        (out.to_agent.take(), midframe)
    }
}
