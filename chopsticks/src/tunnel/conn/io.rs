//! The I/O thread of one tunnel: the only reader of the agent's output. It
//! polls the agent's output, its own wake pipe and, while frames wait, the
//! agent's input; it sleeps no longer than the earliest deadline.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::{Conn, Lost};
use crate::wire::{self, Response};

/// The smallest read, and the buffer a tunnel starts with.
const MIN_READ: usize = 4096;
/// Reads grow up to this while they keep filling the buffer.
const MAX_READ: usize = 1 << 20;

/// Serves `conn` until the agent is gone or the tunnel is closed. A panic
/// in here (our bug, a logger's or a waker's) fails the tunnel's calls
/// instead of leaving them waiting forever.
pub(super) fn run(conn: &Arc<Conn>, reader: BufReader<File>, wake: File) {
    let served = panic::catch_unwind(AssertUnwindSafe(|| serve(conn, reader, &wake)));
    if let Err(panic) = served {
        let message = chopsticks_agent::panic_message(&*panic);
        conn.transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kill();
        conn.shut(
            format!("the tunnel's I/O thread panicked ({message}); the agent was stopped"),
            Vec::new(),
        );
    }
}

fn serve(conn: &Conn, reader: BufReader<File>, wake: &File) {
    let mut frames = Frames::new(reader);
    let to_agent = conn
        .outgoing()
        .to_agent
        .as_ref()
        .map_or(-1, AsRawFd::as_raw_fd);
    loop {
        // Frames already read (a whole burst of replies, or what the
        // greeting read ahead) are delivered before polling again.
        loop {
            match frames.next() {
                Ok(Some(range)) => {
                    if let Err(why) = handle(conn, &frames.buf[range]) {
                        return conn.lost(Some(why));
                    }
                }
                Ok(None) => break,
                Err(why) => return conn.lost(Some(why)),
            }
        }
        let next = conn.expire(Instant::now());
        if conn.is_closed() {
            return;
        }
        let writing = conn.queued.load(Ordering::SeqCst);
        let ready = poll(
            frames.fd(),
            wake.as_raw_fd(),
            writing.then_some(to_agent),
            next,
        );
        if ready.wake {
            let mut drain = [0u8; 64];
            while matches!((&*wake).read(&mut drain), Ok(n) if n > 0) {}
        }
        if ready.write {
            conn.flush();
        }
        if ready.read {
            match frames.fill() {
                Ok(0) => return conn.lost(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return conn.lost(Some(format!("reading the agent's output failed: {e}")))
                }
            }
        }
    }
}

/// Acts on one frame from the agent; `Err` when it breaks the protocol.
fn handle(conn: &Conn, frame: &[u8]) -> Result<(), String> {
    match postcard::from_bytes::<Response>(frame) {
        Ok(Response::Reply { req, result }) => {
            conn.deliver(req, result.map_err(Lost::Failed));
            Ok(())
        }
        Ok(Response::Log {
            level,
            target,
            message,
        }) => {
            relog(conn.host(), level, &target, &message);
            Ok(())
        }
        Ok(Response::Hello(_)) => Err("the agent said hello twice".to_owned()),
        Err(e) => Err(format!("undecodable reply from the agent: {e}")),
    }
}

/// Hands a record logged on the agent to this program's logger, with the
/// host in front of the message.
fn relog(host: &str, level: u8, target: &str, message: &str) {
    let level = wire::level_from_wire(level).unwrap_or(log::Level::Trace);
    // The controller's level may have changed since the agent started.
    let metadata = log::Metadata::builder().level(level).target(target).build();
    if level > log::max_level() || !log::logger().enabled(&metadata) {
        return;
    }
    // The logger is this program's code, run on the I/O thread: its panic
    // must not end that thread.
    let _ = panic::catch_unwind(|| {
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("[{host}] {message}"))
                .build(),
        );
    });
}

/// Which of the polled descriptors are ready.
struct Ready {
    read: bool,
    wake: bool,
    write: bool,
}

/// Waits until the agent's output has data (or ends), the wake pipe has a
/// byte, `to_agent` (when given) takes more, or `until` passes.
fn poll(from_agent: RawFd, wake: RawFd, to_agent: Option<RawFd>, until: Option<Instant>) -> Ready {
    let fd = |fd, events| libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let mut fds = [
        fd(from_agent, libc::POLLIN),
        fd(wake, libc::POLLIN),
        fd(to_agent.unwrap_or(-1), libc::POLLOUT),
    ];
    let ms = match until {
        None => -1,
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            // Round up: waking a little early would only poll again.
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        }
    };
    let count = if to_agent.is_some() { 3 } else { 2 };
    // SAFETY: `fds` is valid for `count` entries for the whole call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), count, ms) };
    if n < 0 {
        // EINTR, or EINVAL/ENOMEM: look again (deadlines are checked first).
        return Ready {
            read: false,
            wake: false,
            write: false,
        };
    }
    Ready {
        // An error or hang-up is read too: the read reports it.
        read: fds[0].revents != 0,
        wake: fds[1].revents != 0,
        write: fds[2].revents != 0,
    }
}

/// The agent's output, cut into frames.
struct Frames {
    file: File,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not yet delivered.
    start: usize,
    end: usize,
}

impl Frames {
    /// Takes over the greeting's reader, with what it read ahead.
    fn new(reader: BufReader<File>) -> Frames {
        let mut buf = reader.buffer().to_vec();
        let end = buf.len();
        buf.resize(end.max(MIN_READ), 0);
        Frames {
            file: reader.into_inner(),
            buf,
            start: 0,
            end,
        }
    }

    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The payload of the next whole frame, if one is buffered.
    ///
    /// # Errors
    /// A frame longer than the protocol allows.
    fn next(&mut self) -> Result<Option<Range<usize>>, String> {
        let have = &self.buf[self.start..self.end];
        let Some(header) = have.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*header) as usize;
        if len > wire::MAX_FRAME {
            return Err(format!(
                "frame length {len} exceeds the limit of {} bytes: the stream is corrupt",
                wire::MAX_FRAME
            ));
        }
        if have.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.start + 4..self.start + 4 + len;
        self.start = payload.end;
        Ok(Some(payload))
    }

    /// Reads what the agent wrote (at least one byte, unless it is gone).
    fn fill(&mut self) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > MAX_READ {
                // A big frame has gone: do not keep its memory.
                self.buf = vec![0; MIN_READ];
            }
        }
        // Room for the frame that has begun, and for a useful read.
        let pending = self.end - self.start;
        let frame = self.buf[self.start..self.end]
            .first_chunk::<4>()
            .map_or(0, |h| 4 + u32::from_le_bytes(*h) as usize);
        let want = pending + MIN_READ.max(frame.saturating_sub(pending));
        if self.buf.len() - self.start < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = self.file.read(&mut self.buf[self.end..])?;
        self.end += n;
        if self.end == self.buf.len() && self.buf.len() < MAX_READ {
            // Reads keep filling the buffer: read more at a time.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames over a pipe that a thread fills with `bytes`, then closes.
    fn frames_of(bytes: &[u8]) -> Frames {
        let (read, mut write) = std::io::pipe().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || std::io::Write::write_all(&mut write, &bytes));
        Frames::new(BufReader::new(File::from(std::os::fd::OwnedFd::from(read))))
    }

    #[test]
    fn frames_are_cut_whole_across_reads() {
        let mut stream = Vec::new();
        let sizes = [0usize, 1, 5000, 3, 70_000, 2];
        for (i, size) in sizes.iter().enumerate() {
            stream.extend((*size as u32).to_le_bytes());
            stream.extend(std::iter::repeat_n(i as u8, *size));
        }
        let mut frames = frames_of(&stream);
        let mut got = Vec::new();
        loop {
            while let Some(range) = frames.next().unwrap() {
                got.push(frames.buf[range].to_vec());
            }
            if frames.fill().unwrap() == 0 {
                break;
            }
        }
        assert_eq!(got.len(), sizes.len());
        for (i, (frame, size)) in got.iter().zip(sizes).enumerate() {
            assert_eq!(frame.len(), size);
            assert!(frame.iter().all(|b| *b == i as u8));
        }
        assert_eq!(frames.start, frames.end, "nothing is left over");
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let mut frames = frames_of(&(wire::MAX_FRAME as u32 + 1).to_le_bytes());
        frames.fill().unwrap();
        assert!(frames.next().unwrap_err().contains("exceeds the limit"));
    }
}
