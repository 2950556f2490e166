//! The agent's stderr: forwarded line by line as `[host] line` (one colour
//! per host on a terminal), with the last lines kept for error messages.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
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
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.lines.len() == KEEP {
            state.lines.pop_front();
        }
        state.lines.push_back(line);
    }

    /// Prints the lines that come from now on.
    pub(crate) fn go_live(&self) {
        self.live.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn finish(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .eof = true;
        self.closed.notify_all();
    }

    /// The kept lines, after waiting at most `bound` for stderr to end (so a
    /// dying agent's last words are in).
    pub(crate) fn lines_after_eof(&self, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.eof {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .closed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.lines.iter().cloned().collect()
    }
}

/// Starts the thread that reads the agent's stderr.
pub(crate) fn forward(host: &str, stream: impl Read + Send + 'static) -> io::Result<Arc<Tail>> {
    let tail = Arc::new(Tail::default());
    let prefix = prefix(
        host,
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    );
    let kept = Arc::clone(&tail);
    thread::Builder::new()
        .name(format!("chopsticks-stderr-{host}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if kept.live.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = writeln!(io::stderr().lock(), "{prefix}{line}");
                }
                kept.push(line.to_owned());
            }
            kept.finish();
        })?;
    Ok(tail)
}

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

    #[test]
    fn prefix_is_plain_without_colour() {
        assert_eq!(prefix("web1", false), "[web1] ");
        assert!(prefix("web1", true).starts_with("\x1b["));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let input: Vec<u8> = (0..20)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let tail = forward("t", io::Cursor::new(input)).unwrap();
        let lines = tail.lines_after_eof(Duration::from_secs(5));
        assert_eq!(lines.len(), KEEP);
        assert_eq!(lines.last().unwrap(), "line 19");
    }
}
