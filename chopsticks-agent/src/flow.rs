//! Credit-based flow control of streams, the same at both ends of the wire
//! (see `docs/PROTOCOL.md`, "Streams").
//!
//! A stream's sender starts with [`STREAM_WINDOW`] bytes of credit and may
//! send no more than its credit; the receiver grants more as it consumes
//! what arrived. So what a stream buffers at its receiver never exceeds the
//! window, whatever the stream's length.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::AsRawFd;

use crate::wire::STREAM_WINDOW;

/// The receiver grants credit once this much was consumed since its last
/// grant: a quarter of the window, so the sender never runs dry on a
/// link that keeps up.
pub const GRANT_STEP: u64 = STREAM_WINDOW / 4;

/// The size each end asks for its pipes to the other (`F_SETPIPE_SZ`; 1 MiB
/// is what Linux lets any user have): a pipe of the default 64 KiB takes
/// half a data frame, so each frame would cost several wake-ups.
pub const PIPE_SIZE: i32 = 1 << 20;

/// Asks for a [`PIPE_SIZE`] buffer for `file` if it is a pipe; anything
/// else (a socket, a terminal, an old kernel) keeps what it has.
pub fn widen_pipe(file: &impl AsRawFd) {
    // SAFETY: fcntl on a valid descriptor with an integer argument; on
    // something that is not a pipe it fails, which is fine.
    unsafe {
        libc::fcntl(file.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

/// The sending end's credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    available: u64,
}

impl Default for Credit {
    fn default() -> Self {
        Credit {
            available: STREAM_WINDOW,
        }
    }
}

impl Credit {
    /// How many bytes may be sent now.
    pub fn available(&self) -> u64 {
        self.available
    }

    /// Spends up to `wanted` bytes of credit; returns how many may be sent
    /// (0 when there is no credit: wait for a grant).
    pub fn spend(&mut self, wanted: usize) -> usize {
        let n = (wanted as u64).min(self.available);
        self.available -= n;
        n as usize
    }

    /// The receiver granted `bytes` more.
    pub fn grant(&mut self, bytes: u64) {
        self.available = self.available.saturating_add(bytes);
    }
}

/// The receiving end's account: what arrived, what was consumed, and
/// when to grant more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    /// The sender may have sent this many bytes in all.
    allowed: u64,
    received: u64,
    consumed: u64,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            allowed: STREAM_WINDOW,
            received: 0,
            consumed: 0,
        }
    }
}

/// The sender sent more than its credit: it broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    /// Bytes received in all, counting the frame that overran.
    pub received: u64,
    /// Bytes the sender was allowed.
    pub allowed: u64,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the peer sent {} stream bytes with credit for {}",
            self.received, self.allowed
        )
    }
}

impl Grants {
    /// `bytes` arrived.
    ///
    /// # Errors
    /// [`Overrun`] when they exceed the credit granted.
    pub fn receive(&mut self, bytes: usize) -> Result<(), Overrun> {
        self.received += bytes as u64;
        if self.received > self.allowed {
            return Err(Overrun {
                received: self.received,
                allowed: self.allowed,
            });
        }
        Ok(())
    }

    /// `bytes` were consumed; returns the credit to grant now, if any.
    pub fn consume(&mut self, bytes: usize) -> Option<u64> {
        self.consumed += bytes as u64;
        // Credit is granted back up to a full window past what was consumed.
        let owed = (self.consumed + STREAM_WINDOW).saturating_sub(self.allowed);
        if owed < GRANT_STEP {
            return None;
        }
        self.allowed += owed;
        Some(owed)
    }

    /// Bytes that arrived and were not consumed yet.
    pub fn buffered(&self) -> u64 {
        self.received - self.consumed
    }
}

/// What arrived on a stream and was not read yet, chunk by chunk as the
/// frames brought it.
#[derive(Debug, Default)]
pub struct Chunks {
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already read.
    front: usize,
}

impl Chunks {
    /// Keeps a copy of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.queue.push_back(bytes.to_vec());
    }

    /// Whether nothing is left to read.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Copies what is there, up to `buf`'s length, out of the first chunk;
    /// returns how many bytes.
    pub fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let Some(chunk) = self.queue.front() else {
            return 0;
        };
        let n = buf.len().min(chunk.len() - self.front);
        buf[..n].copy_from_slice(&chunk[self.front..self.front + n]);
        self.front += n;
        if self.front == chunk.len() {
            self.queue.pop_front();
            self.front = 0;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DATA_CHUNK;

    /// A sender and a receiver exchanging a long stream through a link that
    /// holds whatever was sent: the receiver never buffers more than a
    /// window, and the sender never stalls for good.
    #[test]
    fn a_long_stream_stays_within_the_window() {
        let mut credit = Credit::default();
        let mut grants = Grants::default();
        let mut in_flight: std::collections::VecDeque<usize> = Default::default();
        let total: u64 = 1 << 30;
        let (mut sent, mut consumed) = (0u64, 0u64);
        let mut stalls = 0;
        while consumed < total {
            // The sender sends what its credit allows, a chunk at a time.
            loop {
                let left = (total - sent).min(DATA_CHUNK as u64) as usize;
                let n = credit.spend(left);
                if n == 0 {
                    break;
                }
                grants.receive(n).unwrap();
                in_flight.push_back(n);
                sent += n as u64;
            }
            assert!(grants.buffered() <= STREAM_WINDOW, "{grants:?}");
            // The receiver consumes one chunk and grants what it owes.
            match in_flight.pop_front() {
                Some(n) => {
                    consumed += n as u64;
                    if let Some(more) = grants.consume(n) {
                        credit.grant(more);
                    }
                }
                None => stalls += 1,
            }
            assert!(stalls == 0, "the sender ran out of credit for good");
        }
        assert_eq!(sent, total);
    }

    #[test]
    fn chunks_are_read_in_order_across_their_edges() {
        let mut chunks = Chunks::default();
        chunks.push(b"hel");
        chunks.push(b"lo");
        let mut buf = [0u8; 2];
        let mut out = Vec::new();
        while !chunks.is_empty() {
            let n = chunks.read_into(&mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"hello");
        assert_eq!(chunks.read_into(&mut buf), 0);
    }

    #[test]
    fn sending_past_the_credit_is_an_overrun() {
        let mut grants = Grants::default();
        grants.receive(STREAM_WINDOW as usize).unwrap();
        let err = grants.receive(1).unwrap_err();
        assert_eq!(err.allowed, STREAM_WINDOW);
        assert!(err.to_string().contains("credit for"), "{err}");
    }

    #[test]
    fn a_receiver_that_never_grants_stops_the_sender_at_the_window() {
        let mut credit = Credit::default();
        let mut sent = 0;
        loop {
            match credit.spend(DATA_CHUNK) {
                0 => break,
                n => sent += n as u64,
            }
        }
        assert_eq!(sent, STREAM_WINDOW);
        assert_eq!(credit.spend(1), 0);
        credit.grant(10);
        assert_eq!(credit.spend(100), 10);
    }

    #[test]
    fn grants_come_in_steps_not_per_byte() {
        let mut grants = Grants::default();
        grants.receive(1000).unwrap();
        assert_eq!(grants.consume(1000), None);
        grants.receive(GRANT_STEP as usize).unwrap();
        assert_eq!(grants.consume(GRANT_STEP as usize), Some(GRANT_STEP + 1000));
        assert_eq!(grants.buffered(), 0);
    }
}
