//! What goes to the agent: frames written whole and in order, by the
//! caller when the agent takes them, else queued for the I/O thread, which
//! writes them as the agent reads (`flush`); corked frames nobody waits for
//! by the cork watcher (`corks`).
//!
//! A call that may wait (`call_async`) is *corked* when others of its
//! tunnel are in flight, or when it continues a burst of its thread's
//! calls (see `corks`): queued, not written, so that the calls of a burst
//! reach each agent (and the ssh between) in one large write, not in one
//! small write, packet and wake-up of every process on the way each.
//! Corked frames are written, all in one system call, as soon as a caller
//! waits for one of them ([`urge`](Conn::urge)), the thread that began the
//! cork waits for any call, a frame that must go at once joins them, or
//! they reach [`CORK_MAX`] bytes; else by the process's cork watcher
//! (`corks`), once no frame joined them for [`CORK_QUIET`] or the first is
//! [`CORK_LIMIT`] old. A call its caller waits for at once (`call`) is
//! written at once, and so is the first of a burst when nothing of its
//! tunnel is in flight: neither has anything to wait for.

use chopsticks_agent::sync::Unpoisoned;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::corks::{self, CORK_CHECK};
use super::Conn;
use crate::wire::{self, Request};

/// The request ID of queued frames that are sent whatever became of their
/// call (credit, cancels): request IDs start at 1.
pub(super) const CONTROL: u64 = 0;

/// Corked frames go when none joined them for this long: the calls of a
/// burst issued from one thread follow each other well within it.
const CORK_QUIET: Duration = Duration::from_micros(200);
/// How long corked frames wait at most, however many join them.
const CORK_LIMIT: Duration = Duration::from_millis(10);
/// Corked frames are written once they hold this many bytes.
const CORK_MAX: usize = 64 * 1024;
/// The most frames one `writev` takes (Linux takes 1024).
const GATHER: usize = 256;

/// What goes to the agent: frames are written whole, in order.
pub(super) struct Outgoing {
    /// `None` once the tunnel is closing.
    pub(super) to_agent: Option<File>,
    /// Frames not (fully) written yet, oldest first.
    queue: VecDeque<Queued>,
    /// The bytes in `queue` not written yet.
    bytes: usize,
    /// The corked frames, if any.
    corked: Option<Cork>,
}

/// When corked frames were queued, and when the watcher looks at them.
#[derive(Clone, Copy)]
struct Cork {
    oldest: Instant,
    newest: Instant,
    check: Instant,
}

impl Outgoing {
    pub(super) fn new(to_agent: File) -> Outgoing {
        Outgoing {
            to_agent: Some(to_agent),
            queue: VecDeque::new(),
            bytes: 0,
            corked: None,
        }
    }

    fn push(&mut self, req: u64, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.queue.push_back(Queued {
            req,
            frame,
            written: 0,
        });
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
        self.corked = None;
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

    /// Queues `frame` and writes the queue. Returns whether the I/O thread
    /// must be woken to write what the agent did not take.
    pub(super) fn send(&self, req: u64, frame: Vec<u8>) -> bool {
        let mut out = self.outgoing();
        self.queue(&mut out, req, frame) && self.write_out(&mut out)
    }

    /// Queues `frame`; says whether the queue is the caller's to write: not
    /// while closing (the call fails with the tunnel), nor while the agent
    /// does not take input (nothing is corked then: the I/O thread writes
    /// the queue as it reads, so a call returns at once however much waits).
    fn queue(&self, out: &mut Outgoing, req: u64, frame: Vec<u8>) -> bool {
        if out.to_agent.is_none() {
            return false;
        }
        out.push(req, frame);
        !self.queued.load(Ordering::SeqCst)
    }

    /// As [`send`](Conn::send), or, given when (`cork`), corks the frame
    /// (see the module's docs).
    pub(super) fn send_or_cork(
        self: &Arc<Self>,
        req: u64,
        frame: Vec<u8>,
        cork: Option<Instant>,
    ) -> bool {
        let mut out = self.outgoing();
        if !self.queue(&mut out, req, frame) {
            return false;
        }
        let Some(now) = cork.filter(|_| out.bytes < CORK_MAX) else {
            return self.write_out(&mut out);
        };
        if let Some(cork) = &mut out.corked {
            cork.newest = now;
            return false;
        }
        out.corked = Some(Cork {
            oldest: now,
            newest: now,
            check: now + CORK_CHECK,
        });
        self.corked.store(true, Ordering::SeqCst);
        // No cork without someone to write it: without a watcher (no
        // thread could be started), frames go at once.
        if !corks::watch(self) {
            return self.write_out(&mut out);
        }
        drop(out);
        corks::began(self);
        false
    }

    /// Whether frames are corked.
    pub(super) fn is_corked(&self) -> bool {
        self.corked.load(Ordering::SeqCst)
    }

    /// Writes corked frames now: a caller waits for one of them.
    pub(crate) fn urge(&self) {
        if self.corked.load(Ordering::SeqCst) && self.write_out(&mut self.outgoing()) {
            self.wake();
        }
    }

    /// The watcher's look at this tunnel's cork: writes it when due, and
    /// says when to look next, if it remains corked.
    pub(super) fn check_cork(&self, now: Instant) -> Option<Instant> {
        if !self.corked.load(Ordering::SeqCst) {
            return None;
        }
        let mut out = self.outgoing();
        let cork = out.corked.as_mut()?;
        if now < cork.check {
            return Some(cork.check);
        }
        let limit = cork.oldest + CORK_LIMIT;
        if now < cork.newest + CORK_QUIET && now < limit {
            // Calls still join it: look again later.
            cork.check = (now + CORK_CHECK).min(limit);
            return Some(cork.check);
        }
        if self.write_out(&mut out) {
            drop(out);
            self.wake();
        }
        None
    }

    /// The I/O thread's write, when the agent takes input again.
    pub(super) fn flush(&self) {
        let mut out = self.outgoing();
        self.write_out(&mut out);
    }

    /// Writes queued frames, many in one system call, until the agent
    /// stops taking them; nothing is corked after. Frames of calls nobody
    /// waits for any more (timed out before they could be written, or
    /// dropped while the agent was not reading) are not sent. Returns
    /// whether the I/O thread must be woken to write the rest when the
    /// agent takes it.
    fn write_out(&self, out: &mut Outgoing) -> bool {
        self.corked.store(false, Ordering::SeqCst);
        let Outgoing {
            to_agent,
            queue,
            bytes,
            corked,
            ..
        } = out;
        *corked = None;
        let Some(to_agent) = to_agent.as_ref() else {
            queue.clear();
            *bytes = 0;
            self.queued.store(false, Ordering::SeqCst);
            return false;
        };
        while !queue.is_empty() {
            let alive = match queue.len() {
                1 => 1,
                _ => self.drop_dead(queue, bytes),
            };
            if alive == 0 {
                // Every frame looked at was dead: look at the next ones.
                continue;
            }
            let slices: Vec<IoSlice<'_>> = queue
                .iter()
                .take(alive)
                .map(|q| IoSlice::new(&q.frame[q.written..]))
                .collect();
            match (&*to_agent).write_vectored(&slices) {
                // A pipe that takes nothing of a write is broken.
                Ok(0) => {
                    queue.clear();
                    *bytes = 0;
                }
                Ok(mut n) => {
                    *bytes -= n;
                    while let Some(next) = queue.front_mut() {
                        let left = next.frame.len() - next.written;
                        if n < left {
                            next.written += n;
                            break;
                        }
                        n -= left;
                        queue.pop_front();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return !self.queued.swap(true, Ordering::SeqCst);
                }
                // Gone: the end of its output fails the calls.
                Err(_) => {
                    queue.clear();
                    *bytes = 0;
                }
            }
        }
        self.queued.store(false, Ordering::SeqCst);
        false
    }

    /// Removes, from the front of the queue, the frames of calls nobody
    /// waits for any more, and returns how many frames at the front were
    /// looked at and kept: what the next write takes. (At most [`GATHER`]
    /// are looked at: the cost of a write stays bounded however long the
    /// queue.)
    fn drop_dead(&self, queue: &mut VecDeque<Queued>, bytes: &mut usize) -> usize {
        let state = self.state();
        let (mut at, mut looked) = (0, 0);
        while at < queue.len() && looked < GATHER {
            looked += 1;
            let q = &queue[at];
            // A frame begun is finished, whatever became of its call.
            let dead = q.written == 0 && q.req != CONTROL && !state.waiting.contains_key(&q.req);
            match dead {
                true => {
                    *bytes -= q.frame.len();
                    queue.remove(at);
                }
                false => at += 1,
            }
        }
        at
    }

    /// Stops sending: the queue is dropped and the agent's input taken,
    /// with whether a frame was half written (a Shutdown after it would
    /// read as garbage).
    pub(super) fn stop_sending(&self) -> (Option<File>, bool) {
        let mut out = self.outgoing();
        let midframe = out.queue.front().is_some_and(|q| q.written > 0);
        out.clear();
        self.queued.store(false, Ordering::SeqCst);
        self.corked.store(false, Ordering::SeqCst);
        (out.to_agent.take(), midframe)
    }
}
