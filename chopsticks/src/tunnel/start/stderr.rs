//! The agent's stderr: forwarded line by line as `[host] line` (one colour
//! per host on a terminal), with the last lines kept for error messages.
//! The tunnel's I/O thread reads it; the connecting thread and the error
//! for a lost agent read the [`Tail`].

use chopsticks_agent::sync::Unpoisoned;
use std::collections::VecDeque;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many stderr lines an error quotes.
const KEEP: usize = 12;

/// The last lines the agent wrote to stderr.
#[derive(Default)]
pub(crate) struct Tail {
    state: Mutex<TailState>,
    closed: Condvar,
    /// Lines are printed once the agent is up; before that (ssh errors,
    /// login noise) they only go into the error that reports a failed start.
    live: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct TailState {
    lines: VecDeque<String>,
    eof: bool,
}

impl Tail {
    fn push(&self, line: String) {
        let mut state = self.state.lock().unpoisoned();
        if state.lines.len() == KEEP {
            state.lines.pop_front();
        }
        state.lines.push_back(line);
    }

    /// Prints the lines that come from now on.
    pub(crate) fn go_live(&self) {
        self.live.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn finish(&self) {
        self.state.lock().unpoisoned().eof = true;
        self.closed.notify_all();
    }

    /// The kept lines, after waiting at most `bound` for stderr to end (so a
    /// dying agent's last words are in).
    pub(crate) fn lines_after_eof(&self, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        let mut state = self.state.lock().unpoisoned();
        while !state.eof {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .closed
                .wait_timeout(state, deadline - now)
                .unpoisoned()
                .0;
        }
        state.lines.iter().cloned().collect()
    }
}

/// The agent's stderr cut into lines: each is printed as `[host] line`
/// once the agent is up, and kept in the [`Tail`]. The tunnel's I/O thread
/// reads it.
pub(crate) struct Lines {
    file: File,
    prefix: String,
    tail: Arc<Tail>,
    /// Bytes of a line not finished yet.
    partial: Vec<u8>,
}

impl Lines {
    pub(crate) fn new(host: &str, file: File, tail: Arc<Tail>) -> Lines {
        let colour = crate::terminal::stderr_colours();
        Lines {
            file,
            prefix: prefix(host, colour),
            tail,
            partial: Vec::new(),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Whether the unfinished line ends with `prompt` (a program waits for
    /// an answer to it); if so, the prompt is taken out of the stream.
    pub(crate) fn take_prompt(&mut self, prompt: &str) -> bool {
        let Some(before) = self.partial.strip_suffix(prompt.as_bytes()) else {
            return false;
        };
        let before = before.len();
        self.partial.truncate(before);
        true
    }

    /// Reads what is there (the I/O thread polled for it) and passes on
    /// every finished line. Returns `false` at the end of the stream (or an
    /// error), after passing on an unfinished last line.
    pub(crate) fn read(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let n = loop {
            match (&self.file).read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Ok(0) | Err(_) => {
                    if !self.partial.is_empty() {
                        let last = std::mem::take(&mut self.partial);
                        self.line(&last);
                    }
                    self.tail.finish();
                    return false;
                }
                Ok(n) => break n,
            }
        };
        let mut start = 0;
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                if self.partial.is_empty() {
                    self.line(&buf[start..i]);
                } else {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&buf[start..i]);
                    self.line(&line);
                }
                start = i + 1;
            }
        }
        self.partial.extend_from_slice(&buf[start..n]);
        if self.partial.len() > MAX_LINE {
            // An endless line is passed on in pieces.
            let long = std::mem::take(&mut self.partial);
            self.line(&long);
        }
        true
    }

    fn line(&self, bytes: &[u8]) {
        let line = String::from_utf8_lossy(bytes);
        let line = crate::output::printable(line.trim_end_matches(['\n', '\r']));
        if self.tail.live.load(std::sync::atomic::Ordering::SeqCst) {
            crate::output::line(format!("{}{line}", self.prefix));
        }
        self.tail.push(line.into_owned());
    }
}

/// Lines longer than this are passed on in pieces.
const MAX_LINE: usize = 64 * 1024;

fn prefix(host: &str, colour: bool) -> String {
    if !colour {
        return format!("[{host}] ");
    }
    const COLOURS: [u8; 6] = [36, 32, 33, 35, 34, 31];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    host.hash(&mut hasher);
    let colour = COLOURS[(hasher.finish() % COLOURS.len() as u64) as usize];
    format!("\x1b[{colour}m[{host}]\x1b[0m ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn prefix_is_plain_without_colour() {
        assert_eq!(prefix("web1", false), "[web1] ");
        assert!(prefix("web1", true).starts_with("\x1b["));
    }

    #[test]
    fn lines_are_cut_across_reads_and_the_tail_keeps_the_last() {
        let (read, mut write) = io::pipe().unwrap();
        let tail = Arc::new(Tail::default());
        let mut lines = Lines::new(
            "t",
            File::from(std::os::fd::OwnedFd::from(read)),
            Arc::clone(&tail),
        );
        for i in 0..20 {
            write
                .write_all(format!("line {i}\nhalf ").as_bytes())
                .unwrap();
            assert!(lines.read());
            write.write_all(b"done\n").unwrap();
            assert!(lines.read());
        }
        write.write_all(b"no newline").unwrap();
        drop(write);
        while lines.read() {}
        let kept = tail.lines_after_eof(Duration::from_secs(5));
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[KEEP - 2], "half done");
        assert_eq!(kept[KEEP - 1], "no newline");
        assert!(kept.contains(&"line 19".to_owned()));
    }
}
