//! The controller's end of one call's streams: credit for what it sends the
//! agent, and the bytes the agent sent that were not read yet. The I/O
//! thread fills it (`Response::Data`, `Response::Credit`); the thread that
//! made the call drains it. It closes when the call ends (its reply, its
//! deadline, a closed tunnel), which wakes whoever waits on it: a peer that
//! never grants credit holds a sender only until the call's deadline.

use chopsticks_agent::sync::Unpoisoned;
use std::sync::{Condvar, Mutex, MutexGuard};

use chopsticks_agent::flow::{Chunks, Credit, Grants, Overrun};

#[derive(Default)]
pub(crate) struct Pipe {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    credit: Credit,
    chunks: Chunks,
    grants: Grants,
    closed: bool,
}

/// What a read from the pipe gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Read {
    /// Bytes copied out (0: the call ended and everything was read).
    pub n: usize,
    /// Credit to grant the agent now.
    pub grant: Option<u64>,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unpoisoned()
    }

    /// Whether the call ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The agent granted `bytes` more credit.
    pub(crate) fn grant(&self, bytes: u64) {
        self.lock().credit.grant(bytes);
        self.changed.notify_all();
    }

    /// Output of the agent arrived.
    ///
    /// # Errors
    /// When the agent sent past its credit.
    pub(crate) fn push(&self, bytes: &[u8]) -> Result<(), Overrun> {
        {
            let mut state = self.lock();
            state.grants.receive(bytes.len())?;
            if !state.closed {
                state.chunks.push(bytes);
            }
        }
        self.changed.notify_all();
        Ok(())
    }

    /// The call ended: senders stop, readers get what is left, then EOF.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Waits for credit, and spends up to `wanted` bytes of it. `None`
    /// when the call ended first.
    pub(crate) fn spend(&self, wanted: usize) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            match state.credit.spend(wanted) {
                0 => state = self.changed.wait(state).unpoisoned(),
                n => return Some(n),
            }
        }
    }

    /// Waits for output of the agent and copies it into `buf`.
    pub(crate) fn read(&self, buf: &mut [u8]) -> Read {
        let mut state = self.lock();
        while state.chunks.is_empty() {
            if state.closed || buf.is_empty() {
                return Read { n: 0, grant: None };
            }
            state = self.changed.wait(state).unpoisoned();
        }
        let n = state.chunks.read_into(buf);
        let grant = if state.closed {
            None
        } else {
            state.grants.consume(n)
        };
        Read { n, grant }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chopsticks_agent::wire::{DATA_CHUNK, STREAM_WINDOW};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A peer that never grants credit: the sender stops at the window,
    /// and waits only until the call ends (here: its deadline closes it).
    #[test]
    fn a_sender_without_credit_waits_until_the_call_ends() {
        let pipe = Arc::new(Pipe::default());
        let mut sent = 0;
        while (sent as u64) < STREAM_WINDOW {
            sent += pipe.spend(DATA_CHUNK).unwrap();
        }
        let closer = Arc::clone(&pipe);
        let start = Instant::now();
        let deadline = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            closer.close();
        });
        assert_eq!(pipe.spend(DATA_CHUNK), None);
        assert!(start.elapsed() >= Duration::from_millis(100));
        deadline.join().unwrap();
    }

    #[test]
    fn a_reader_gets_what_is_left_after_the_call_ends_then_eof() {
        let pipe = Pipe::default();
        pipe.push(b"hello").unwrap();
        pipe.close();
        let mut buf = [0u8; 3];
        assert_eq!(pipe.read(&mut buf).n, 3);
        assert_eq!(pipe.read(&mut buf).n, 2);
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(pipe.read(&mut buf).n, 0);
    }

    #[test]
    fn output_past_the_credit_is_refused_and_reading_grants_more() {
        let pipe = Pipe::default();
        let chunk = vec![0u8; DATA_CHUNK];
        for _ in 0..STREAM_WINDOW as usize / DATA_CHUNK {
            pipe.push(&chunk).unwrap();
        }
        assert!(pipe.push(&[0]).is_err());
        let mut buf = vec![0u8; DATA_CHUNK];
        let mut granted = 0;
        for _ in 0..STREAM_WINDOW as usize / DATA_CHUNK {
            granted += pipe.read(&mut buf).grant.unwrap_or(0);
        }
        assert_eq!(granted, STREAM_WINDOW);
    }
}
