//! A call with streams, as its caller sees it: write the call's input
//! (`Write`), read its output (`Read`), then [`finish`](Streaming::finish)
//! for its result. Credit and its waits are the [`Pipe`]'s: a write waits
//! for credit only until the call ends (its reply, its deadline, the
//! tunnel closing), and then fails with `BrokenPipe`; the result says why.
//! Dropping it cancels the call on the agent.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::conn::{Conn, Pipe};
use super::{Pending, Tunnel};
use crate::error::Result;
use crate::wire::DATA_CHUNK;
use crate::RemoteFn;

pub(crate) struct Streaming<T> {
    pending: Pending<T>,
    conn: Arc<Conn>,
    req: u64,
    pipe: Arc<Pipe>,
    /// Input written and not sent yet; `sent` bytes of it are sent.
    out: Vec<u8>,
    sent: usize,
}

impl Tunnel {
    /// Calls `f` with `input` streamed to it: the function reads it with
    /// [`agent::stream::input`](crate::agent::stream::input), at the pace it
    /// reads (the protocol's credit keeps what waits in memory to a few
    /// MiB), while other calls on the tunnel go on. Bounded by the call
    /// timeout; when `f` returns before it read everything, the rest is not
    /// sent.
    ///
    /// ```
    /// use std::io::Read;
    /// use chopsticks::{agent::stream, remote, Tunnel};
    ///
    /// #[remote]
    /// fn count_lines() -> std::io::Result<usize> {
    ///     let mut text = String::new();
    ///     stream::input()?.read_to_string(&mut text)?;
    ///     Ok(text.lines().count())
    /// }
    ///
    /// #[chopsticks::main]
    /// fn main() -> chopsticks::Result<()> {
    ///     let t = Tunnel::local()?;
    ///     let lines = t.call_with_input(count_lines, (), &b"a\nb\nc\n"[..])?;
    ///     assert_eq!(lines, 3);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// Any error of a call, and [`Error::Controller`](crate::Error::Controller)
    /// when reading `input` fails (the call is then cancelled on the host).
    pub fn call_with_input<F: RemoteFn>(
        &self,
        f: F,
        args: F::Args,
        mut input: impl Read,
    ) -> Result<F::Output> {
        let mut call = self.call_streaming(f, args, true, false)?;
        let mut buf = vec![0u8; DATA_CHUNK];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(crate::Error::Controller {
                        host: self.host().to_owned(),
                        function: Some(F::NAME),
                        message: format!("reading the call's input failed: {e}"),
                    })
                }
            };
            if call.write_all(&buf[..n]).is_err() {
                // The call ended first: its result says how.
                return call.wait();
            }
        }
        call.finish(true)
    }

    /// Calls `f`, writing what it streams back (through
    /// [`agent::stream::output`](crate::agent::stream::output)) to
    /// `output` as it arrives, then returns its result: for results larger
    /// than a frame (64 MiB), or to process them while they come.
    ///
    /// ```
    /// use std::io::Write;
    /// use chopsticks::{agent::stream, remote, Tunnel};
    ///
    /// #[remote]
    /// fn numbers(n: u32) -> std::io::Result<u32> {
    ///     let mut out = stream::output()?;
    ///     for i in 0..n {
    ///         writeln!(out, "{i}")?;
    ///     }
    ///     Ok(n)
    /// }
    ///
    /// #[chopsticks::main]
    /// fn main() -> chopsticks::Result<()> {
    ///     let t = Tunnel::local()?;
    ///     let mut text = Vec::new();
    ///     assert_eq!(t.call_with_output(numbers, (3,), &mut text)?, 3);
    ///     assert_eq!(text, b"0\n1\n2\n");
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// Any error of a call, and [`Error::Controller`](crate::Error::Controller)
    /// when writing to `output` fails (the call is then cancelled on the
    /// host).
    pub fn call_with_output<F: RemoteFn>(
        &self,
        f: F,
        args: F::Args,
        mut output: impl Write,
    ) -> Result<F::Output> {
        let mut call = self.call_streaming(f, args, false, true)?;
        let mut buf = vec![0u8; DATA_CHUNK];
        loop {
            let n = call.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            if let Err(e) = output.write_all(&buf[..n]) {
                return Err(crate::Error::Controller {
                    host: self.host().to_owned(),
                    function: Some(F::NAME),
                    message: format!("writing the call's output failed: {e}"),
                });
            }
        }
        call.finish(false)
    }

    /// Starts `f(args)` with an input stream, an output stream, or both.
    ///
    /// # Errors
    /// What fails before the call is sent (see [`Tunnel::call_async`]).
    pub(crate) fn call_streaming<F: RemoteFn>(
        &self,
        f: F,
        args: F::Args,
        input: bool,
        output: bool,
    ) -> Result<Streaming<F::Output>> {
        let _ = f;
        let (req, slot, pipe) = self
            .conn
            .call_streaming(F::ID, F::NAME, &args, input, output)?;
        let conn = Arc::clone(&self.conn);
        Ok(Streaming {
            pending: Pending::in_flight(Arc::clone(&conn), slot, req, F::NAME),
            conn,
            req,
            pipe,
            out: Vec::with_capacity(DATA_CHUNK),
            sent: 0,
        })
    }
}

impl<T: DeserializeOwned> Streaming<T> {
    /// Bounds the whole call by `timeout` from `start`, instead of the
    /// tunnel's call timeout.
    pub(crate) fn set_timeout_from(&mut self, start: Instant, timeout: Duration) {
        self.pending.set_timeout_from(start, timeout);
    }

    /// What cancels the call at once (see [`Pending`]).
    pub(crate) fn canceller(&self) -> Option<Box<dyn Fn() + Send>> {
        self.pending.canceller()
    }

    /// Whether the call ended (its result is in, or it failed).
    pub(crate) fn ended(&self) -> bool {
        self.pipe.is_closed()
    }

    /// Ends the input stream (when there is one) and waits for the result.
    ///
    /// # Errors
    /// The call's.
    pub(crate) fn finish(mut self, input: bool) -> Result<T> {
        if input && self.send_out().is_ok() {
            self.conn.send_end(self.req);
        }
        self.pending.wait()
    }

    /// The call's result, after its input failed or its output ended.
    ///
    /// # Errors
    /// The call's.
    pub(crate) fn wait(self) -> Result<T> {
        self.pending.wait()
    }
}

impl<T> Streaming<T> {
    fn send_out(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            let wanted = self.out.len() - self.sent;
            let Some(n) = self.pipe.spend(wanted) else {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the call ended before its input was sent",
                ));
            };
            self.conn
                .send_data(self.req, &self.out[self.sent..self.sent + n]);
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }
}

impl<T> Write for Streaming<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() >= DATA_CHUNK / 2 {
            // Large: framed straight from `buf`, after what is pending.
            self.send_out()?;
            let Some(n) = self.pipe.spend(buf.len().min(DATA_CHUNK)) else {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the call ended before its input was sent",
                ));
            };
            self.conn.send_data(self.req, &buf[..n]);
            return Ok(n);
        }
        if self.out.len() == DATA_CHUNK {
            self.send_out()?;
        }
        let n = buf.len().min(DATA_CHUNK - self.out.len());
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_out()
    }
}

/// The input half of a call with streams, apart from its output half (see
/// [`Streaming::split`]).
pub(crate) struct StreamIn {
    conn: Arc<Conn>,
    req: u64,
    pipe: Arc<Pipe>,
}

/// The output half of a call with streams.
pub(crate) struct StreamOut {
    conn: Arc<Conn>,
    req: u64,
    pipe: Arc<Pipe>,
}

impl<T> Streaming<T> {
    /// The call's input and output apart, for two threads (a relay), and
    /// its result. Nothing may have been written yet.
    pub(crate) fn split(self) -> (StreamIn, StreamOut, Pending<T>) {
        debug_assert!(self.out.is_empty());
        let input = StreamIn {
            conn: Arc::clone(&self.conn),
            req: self.req,
            pipe: Arc::clone(&self.pipe),
        };
        let output = StreamOut {
            conn: self.conn,
            req: self.req,
            pipe: self.pipe,
        };
        (input, output, self.pending)
    }
}

impl StreamIn {
    /// Ends the input stream: every byte was sent.
    pub(crate) fn end(&self) {
        self.conn.send_end(self.req);
    }
}

impl Write for StreamIn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(n) = self.pipe.spend(buf.len().min(DATA_CHUNK)) else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the call ended before its input was sent",
            ));
        };
        self.conn.send_data(self.req, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for StreamOut {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.pipe.read(buf);
        if let Some(bytes) = read.grant {
            self.conn.send_credit(self.req, bytes);
        }
        Ok(read.n)
    }
}

impl<T> Read for Streaming<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.pipe.read(buf);
        if let Some(bytes) = read.grant {
            self.conn.send_credit(self.req, bytes);
        }
        Ok(read.n)
    }
}
