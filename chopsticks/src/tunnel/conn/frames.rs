//! The agent's output cut into frames, with a buffer that grows only while
//! large frames pass (and shrinks after them).

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};

use crate::wire;

/// The smallest read, and the buffer a tunnel starts with.
const MIN_READ: usize = 4096;
/// Reads grow up to this while they keep filling the buffer.
const MAX_READ: usize = 1 << 20;

/// The agent's output, cut into frames.
pub(super) struct Frames {
    file: File,
    /// The greeting is over: the unread bytes begin with a frame header.
    /// (Before, they are lines of text, whose first bytes are no length.)
    pub(super) framed: bool,
    pub(super) buf: Vec<u8>,
    /// `buf[start..end]` is read and not yet delivered.
    start: usize,
    end: usize,
}

impl Frames {
    pub(super) fn new(file: File) -> Frames {
        Frames {
            file,
            framed: false,
            buf: vec![0; MIN_READ],
            start: 0,
            end: 0,
        }
    }

    /// What was read and not consumed yet.
    pub(super) fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` unread bytes as consumed.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    pub(super) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The payload of the next whole frame, if one is buffered.
    ///
    /// # Errors
    /// A frame longer than the protocol allows.
    pub(super) fn next(&mut self) -> Result<Option<Range<usize>>, String> {
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
    pub(super) fn fill(&mut self) -> std::io::Result<usize> {
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
            .filter(|_| self.framed)
            .map(|h| u32::from_le_bytes(*h) as usize)
            .filter(|len| *len <= wire::MAX_FRAME)
            .map_or(0, |len| 4 + len);
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

/// Cuts `stream`, what an agent wrote after its hello, into frames as the
/// I/O thread does, checking the cut against the protocol's definition and
/// the buffer against its bound. Returns how many frames it cut, or why the
/// stream is refused. For fuzzing and property tests.
///
/// # Panics
/// When the cut or the buffer's size is wrong: a bug to fix.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_cut(stream: &[u8]) -> Result<usize, String> {
    use std::io::{Seek, Write};
    // SAFETY: a plain system call with a valid, NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"frames".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let mut file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.write_all(stream).expect("writing the memfd");
    file.rewind().expect("rewinding the memfd");
    let mut frames = Frames::new(file);
    frames.framed = true;
    let mut at = 0;
    let mut count = 0;
    loop {
        loop {
            let next = frames.next();
            // What the protocol says comes next.
            let expected = stream
                .get(at..at + 4)
                .map(|h| u32::from_le_bytes(h.try_into().expect("4 bytes")) as usize);
            match next {
                Ok(Some(range)) => {
                    let len = expected.expect("a frame without a header");
                    assert_eq!(range.len(), len, "frame {count} has the wrong length");
                    assert_eq!(
                        &frames.buf[range],
                        &stream[at + 4..at + 4 + len],
                        "frame {count} has the wrong bytes"
                    );
                    at += 4 + len;
                    count += 1;
                }
                Ok(None) => break,
                Err(why) => {
                    assert!(expected.is_some_and(|len| len > wire::MAX_FRAME), "{why}");
                    return Err(why);
                }
            }
        }
        let bound = (4 + wire::MAX_FRAME).max(MAX_READ) + 2 * MIN_READ;
        assert!(
            frames.buf.len() <= bound,
            "a buffer of {} bytes",
            frames.buf.len()
        );
        if frames.fill().expect("reading the memfd") == 0 {
            break;
        }
    }
    let rest = &stream[at..];
    let whole = rest
        .get(..4)
        .map(|h| 4 + u32::from_le_bytes(h.try_into().expect("4 bytes")) as usize);
    assert!(
        whole.is_none_or(|w| w > rest.len()),
        "a whole frame was left uncut"
    );
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames over a pipe that a thread fills with `bytes`, then closes.
    fn frames_of(bytes: &[u8]) -> Frames {
        let (read, mut write) = std::io::pipe().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || std::io::Write::write_all(&mut write, &bytes));
        let mut frames = Frames::new(File::from(std::os::fd::OwnedFd::from(read)));
        frames.framed = true;
        frames
    }

    #[test]
    fn text_before_the_greeting_ends_is_no_frame_length() {
        // 5 KB of banner lines: the second read must not take "Welc" for a
        // 1.6 GB frame.
        let banner = "Welcome to a very chatty host\n".repeat(200);
        let (read, mut write) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut write, banner.as_bytes()).unwrap();
        drop(write);
        let mut frames = Frames::new(File::from(std::os::fd::OwnedFd::from(read)));
        frames.fill().unwrap();
        frames.consume(30);
        while frames.fill().unwrap() > 0 {}
        assert!(frames.buf.len() <= 64 * 1024, "{} bytes", frames.buf.len());
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
