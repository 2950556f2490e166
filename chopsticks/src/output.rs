//! What tunnels pass on from their hosts' stderr: `[host]` lines for this
//! program's stderr. One thread for the whole process writes them, so that
//! a terminal that does not keep up (`| less`, a stopped pager, a full pipe)
//! never holds up a tunnel's I/O thread, which must go on reading replies
//! and timing calls. What is handed over is bounded: beyond [`QUEUE`] lines
//! waiting, lines are dropped and counted, and the count is printed when
//! the writer catches up. Closing a tunnel waits (briefly) for its lines to
//! be written. (The agents' `log` records go to the logger from the I/O
//! thread itself, so that a call's records are logged before it returns.)

use chopsticks_agent::sync::Unpoisoned;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lines waiting for the writer at most.
const QUEUE: usize = 8192;

struct Writer {
    /// Finished lines, prefix included.
    queue: SyncSender<String>,
    /// Lines handed over, and lines written (or dropped).
    sent: AtomicU64,
    done: Mutex<u64>,
    wrote: Condvar,
    dropped: AtomicU64,
}

/// `text` without the control characters a terminal acts on, for what a
/// host sends that reaches this program's terminal (stderr lines, log
/// records): C0 controls and DEL in caret notation (`^[` for ESC, `^G` for
/// BEL), C1 controls as `\u{9b}`; tabs stay. So a host can neither colour
/// our output nor move the cursor, set a title or ring the bell.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
    if !text.contains(control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 && c != '\t' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            c if control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`printable`] for text of several lines: its line feeds stay.
pub(crate) fn printable_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\n') {
        return printable(text);
    }
    let lines: Vec<_> = text.split('\n').map(printable).collect();
    std::borrow::Cow::Owned(lines.join("\n"))
}

/// Whether hosts' stderr lines are printed (they are by default).
static SHOW: AtomicBool = AtomicBool::new(true);

/// Prints the `[host]` lines of every tunnel's remote stderr on this
/// program's stderr (`true`, the default), or not. Either way, what a host
/// wrote last is still quoted in the errors that need it.
pub fn show_remote_stderr(show: bool) {
    SHOW.store(show, Ordering::SeqCst);
}

/// Prints `line` (already prefixed) on this program's stderr.
pub(crate) fn line(line: String) {
    if SHOW.load(Ordering::SeqCst) {
        hand_over(line);
    }
}

/// Waits at most `bound` until what was handed over so far is written.
pub(crate) fn flush(bound: Duration) {
    let Some(writer) = writer() else { return };
    let until = writer.sent.load(Ordering::SeqCst);
    let deadline = Instant::now() + bound;
    let mut done = writer.done.lock().unpoisoned();
    while *done < until {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        done = writer.wrote.wait_timeout(done, left).unpoisoned().0;
    }
}

fn hand_over(line: String) {
    let Some(writer) = writer() else {
        // No thread could be started: write here rather than lose it.
        return write(line);
    };
    writer.sent.fetch_add(1, Ordering::SeqCst);
    match writer.queue.try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            writer.dropped.fetch_add(1, Ordering::Relaxed);
            finished(writer);
        }
        Err(TrySendError::Disconnected(line)) => {
            finished(writer);
            write(line);
        }
    }
}

fn finished(writer: &Writer) {
    *writer.done.lock().unpoisoned() += 1;
    writer.wrote.notify_all();
}

/// The writer, started on first use; `None` when its thread cannot start
/// (then lines are written by whoever hands them over).
fn writer() -> Option<&'static Writer> {
    static WRITER: OnceLock<Option<Writer>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (queue, lines) = sync_channel(QUEUE);
            std::thread::Builder::new()
                .name("chopsticks-output".into())
                .spawn(move || {
                    for line in lines {
                        write(line);
                        if let Some(writer) = writer() {
                            let dropped = writer.dropped.swap(0, Ordering::Relaxed);
                            if dropped > 0 {
                                let _ = writeln!(
                                    std::io::stderr().lock(),
                                    "chopsticks: {dropped} lines of remote output were dropped: \
                                     this program's stderr or logger did not keep up"
                                );
                            }
                            finished(writer);
                        }
                    }
                })
                .ok()?;
            Some(Writer {
                queue,
                sent: AtomicU64::new(0),
                done: Mutex::new(0),
                wrote: Condvar::new(),
                dropped: AtomicU64::new(0),
            })
        })
        .as_ref()
}

fn write(line: String) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_and_tabs_stay() {
        assert_eq!(printable("plain\ttext é"), "plain\ttext é");
        assert_eq!(
            printable("\x1b[31mred\x1b[0m \x1b]0;t\x07 \u{9b}2J \x7f\r"),
            "^[[31mred^[[0m ^[]0;t^G \\u{9b}2J ^?^M"
        );
    }
}
