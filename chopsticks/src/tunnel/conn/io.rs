//! The I/O thread of one tunnel: all of the tunnel's I/O after the agent's
//! process starts. It greets the agent (uploading it when the bootstrap
//! asks), then serves the connection: it is the only reader of the agent's
//! output and of its stderr, writes what callers could not write at once,
//! and sleeps no longer than the earliest deadline.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frames::Frames;
use super::{Conn, Lost, LAST_WORDS};
use crate::contract::SUDO_PROMPT;
use crate::passwords::{PasswordFor, Source};
use crate::tunnel::start::greet::{self, Event, Greeter, Said};
use crate::tunnel::start::stderr::Lines;
use crate::tunnel::start::{Refusal, Ship};
use crate::wire::{self, Response};

/// How long a failed start's stderr is read for the error that quotes it.
const FAILED_START_WORDS: Duration = Duration::from_secs(2);

/// The streams the I/O thread reads.
pub(super) struct Streams {
    pub frames: Frames,
    /// `None` once it ended.
    pub stderr: Option<Lines>,
    /// A byte here wakes the thread.
    pub wake: File,
}

/// What greeting the agent takes.
pub(super) struct Greeting {
    pub greeter: Greeter,
    /// The agent's input (non-blocking), handed back with the hello.
    pub to_agent: File,
    pub ship: Option<Ship>,
    /// The host and where sudo's password comes from, when the bootstrap
    /// runs sudo and a password source is given.
    pub sudo_password: Option<(String, Source)>,
    /// Where the connecting thread waits.
    pub events: Sender<Event>,
    /// The connection, once the connecting thread made it.
    pub conn: Receiver<Arc<Conn>>,
}

/// Greets the agent, then serves the connection the connecting thread
/// makes of it, until the agent is gone or the tunnel is closed.
pub(super) fn run(mut streams: Streams, greeting: Greeting) {
    let Greeting {
        greeter,
        to_agent,
        ship,
        sudo_password,
        events,
        conn,
    } = greeting;
    let asks = Asks {
        ship: ship.as_ref(),
        sudo_password: sudo_password.as_ref(),
    };
    match greet(&mut streams, greeter, to_agent, asks, &events) {
        Ok(greeted) => {
            let _ = events.send(Event::Done(Ok(greeted)));
            drop(events);
            if let Ok(conn) = conn.recv() {
                return serve_guarded(&conn, streams);
            }
        }
        Err(refusal) => {
            let _ = events.send(Event::Done(Err(refusal)));
        }
    }
    // No connection: the connecting thread stops the agent and quotes its
    // last stderr lines; read them to the end.
    last_words(&mut streams, FAILED_START_WORDS);
}

/// What goes to the bootstrap's input: a head (the upload's line, or
/// sudo's password: zeroed once sent or dropped), then the agent's image,
/// shared with every other host it goes to (no copy per host).
#[derive(Default)]
struct Outgoing {
    head: Vec<u8>,
    body: Option<Arc<Vec<u8>>>,
    sent: usize,
}

impl Outgoing {
    fn new(head: Vec<u8>, body: Option<Arc<Vec<u8>>>) -> Outgoing {
        Outgoing {
            head,
            body,
            sent: 0,
        }
    }

    /// What is left to write.
    fn rest(&self) -> &[u8] {
        match self.sent.checked_sub(self.head.len()) {
            None => &self.head[self.sent..],
            Some(at) => self
                .body
                .as_deref()
                .map_or(&[][..], |b| &b[at.min(b.len())..]),
        }
    }

    /// `n` more bytes were written.
    fn sent(&mut self, n: usize) {
        self.sent += n;
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.head.fill(0);
    }
}

/// Reads the agent's output up to its hello, uploading the agent when the
/// bootstrap asks for it, while stderr is read on. Returns the hello, the
/// agent's input and whether the agent was uploaded.
fn greet(
    streams: &mut Streams,
    mut greeter: Greeter,
    mut to_agent: File,
    asks: Asks<'_>,
    events: &Sender<Event>,
) -> Result<(wire::Hello, File, bool), Refusal> {
    // What goes to the host's input before the agent runs: the upload, or
    // sudo's password.
    let mut upload = Outgoing::default();
    let mut uploaded = false;
    let mut sudo_asked = false;
    // A failed upload is reported once the host's output ends: the script
    // says why first (disk full, no gzip ...).
    let mut failed_upload = None;
    loop {
        loop {
            let (used, said) = greeter.feed(streams.frames.unread())?;
            streams.frames.consume(used);
            match said {
                Some(Said::Hello(hello)) => return Ok((hello, to_agent, uploaded)),
                Some(Said::Upload(_)) if uploaded => {
                    return Err("it asked for the agent twice".into());
                }
                Some(Said::Upload(platform)) => {
                    // Compressing is part of the upload (and of its time bound).
                    let _ = events.send(Event::Uploading);
                    let (head, body) = greet::upload(asks.ship, &platform)?;
                    upload = Outgoing::new(head, Some(body));
                    uploaded = true;
                }
                None => break,
            }
        }
        let writing = !upload.rest().is_empty();
        let ready = poll(
            [
                Some((streams.frames.fd(), libc::POLLIN)),
                streams.stderr.as_ref().map(|l| (l.fd(), libc::POLLIN)),
                writing.then(|| (to_agent.as_raw_fd(), libc::POLLOUT)),
                Some((streams.wake.as_raw_fd(), libc::POLLIN)),
            ],
            None,
        );
        if ready[3] {
            // The connecting thread gave up (its bound passed): nobody
            // waits for this greeting any more.
            return Err("the connecting thread gave up".into());
        }
        if ready[2] {
            match to_agent.write(upload.rest()) {
                Ok(n) => upload.sent(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed_upload = Some(format!("uploading the agent failed: {e}"));
                    upload = Outgoing::default();
                }
            }
        }
        if ready[1] {
            read_stderr(streams);
            let asked = streams
                .stderr
                .as_mut()
                .is_some_and(|l| l.take_prompt(SUDO_PROMPT));
            if asked {
                let password = sudo_answer(asks.sudo_password, sudo_asked)?;
                sudo_asked = true;
                upload = Outgoing::new(password, None);
            }
        }
        if ready[0] {
            match streams.frames.fill() {
                Ok(0) => return Err(failed_upload.map_or_else(|| greeter.ended(), Refusal::Agent)),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the agent's output: {e}").into()),
            }
        }
    }
}

/// What the host may ask for while it starts the agent.
#[derive(Clone, Copy)]
struct Asks<'a> {
    ship: Option<&'a Ship>,
    sudo_password: Option<&'a (String, Source)>,
}

/// sudo's password and a line end, when sudo asks for it the first time.
fn sudo_answer(source: Option<&(String, Source)>, asked_before: bool) -> Result<Vec<u8>, Refusal> {
    let Some((host, source)) = source else {
        return Err(Refusal::Script(
            "sudo asks for a password, and this tunnel has no password source: give one \
             (`password_source`), or allow the user NOPASSWD in sudoers"
                .into(),
        ));
    };
    if asked_before {
        return Err(Refusal::Script(
            "sudo refused the password the password source gave (it is answered once, so a \
             wrong password cannot lock the account)"
                .into(),
        ));
    }
    let Some(password) = source.ask(host, PasswordFor::Sudo, "[sudo] password") else {
        return Err(Refusal::Script(
            "sudo asks for a password, and the password source gave none".into(),
        ));
    };
    let mut line = password.into_bytes();
    line.push(b'\n');
    Ok(line)
}

/// A panic in here (our bug, a logger's or a waker's) fails the tunnel's
/// calls instead of leaving them waiting forever.
fn serve_guarded(conn: &Arc<Conn>, mut streams: Streams) {
    let served = panic::catch_unwind(AssertUnwindSafe(|| serve(conn, &mut streams)));
    if let Err(panic) = served {
        let message = chopsticks_agent::panic_message(&*panic);
        conn.kill();
        conn.shut(
            format!("the tunnel's I/O thread panicked ({message}); the agent was stopped"),
            Vec::new(),
        );
    }
}

fn serve(conn: &Conn, streams: &mut Streams) {
    streams.frames.framed = true;
    let to_agent = conn
        .outgoing()
        .to_agent
        .as_ref()
        .map_or(-1, AsRawFd::as_raw_fd);
    loop {
        // Frames already read (a whole burst of replies, or what the
        // greeting read ahead) are delivered before polling again.
        loop {
            let frames = &mut streams.frames;
            match frames.next() {
                Ok(Some(range)) => {
                    if let Err(why) = handle(conn, &frames.buf[range]) {
                        return broken(conn, streams, why);
                    }
                }
                Ok(None) => break,
                Err(why) => return broken(conn, streams, why),
            }
        }
        let next = conn.expire(Instant::now());
        if conn.is_closed() {
            // What the host wrote last is still in the pipe: read it (a
            // bounded while; a child of the agent may hold stderr open).
            last_words(streams, LAST_WORDS);
            return;
        }
        let writing = conn.queued.load(Ordering::SeqCst);
        let ready = poll(
            [
                Some((streams.frames.fd(), libc::POLLIN)),
                streams.stderr.as_ref().map(|l| (l.fd(), libc::POLLIN)),
                writing.then_some((to_agent, libc::POLLOUT)),
                Some((streams.wake.as_raw_fd(), libc::POLLIN)),
            ],
            next,
        );
        if ready[3] {
            let mut drain = [0u8; 64];
            while matches!((&streams.wake).read(&mut drain), Ok(n) if n > 0) {}
        }
        if ready[2] {
            conn.flush();
        }
        if ready[1] {
            read_stderr(streams);
        }
        if ready[0] {
            match streams.frames.fill() {
                Ok(0) => {
                    last_words(streams, LAST_WORDS);
                    return conn.lost(None);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = format!("reading the agent's output failed: {e}");
                    return broken(conn, streams, why);
                }
            }
        }
    }
}

/// The agent's output broke the protocol: stop the agent, then report.
fn broken(conn: &Conn, streams: &mut Streams, why: String) {
    conn.kill();
    last_words(streams, LAST_WORDS);
    conn.lost(Some(why));
}

fn read_stderr(streams: &mut Streams) {
    if let Some(lines) = &mut streams.stderr {
        if !lines.read() {
            streams.stderr = None;
        }
    }
}

/// Reads stderr to its end, for at most `bound`: a dying agent's last words.
fn last_words(streams: &mut Streams, bound: Duration) {
    let deadline = Instant::now() + bound;
    while let Some(lines) = &streams.stderr {
        if Instant::now() >= deadline {
            break;
        }
        if poll([Some((lines.fd(), libc::POLLIN))], Some(deadline))[0] {
            read_stderr(streams);
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
        Ok(Response::Data { req, bytes }) => match conn.pipe(req)? {
            Some(pipe) => pipe
                .push(bytes)
                .map_err(|e| format!("call {req}'s output stream: {e}")),
            // Nobody waits for the call any more: its bytes are dropped.
            None => Ok(()),
        },
        Ok(Response::Credit { req, bytes }) => {
            if let Some(pipe) = conn.pipe(req)? {
                pipe.grant(bytes);
            }
            Ok(())
        }
        Ok(Response::Hello(_)) => Err("the agent said hello twice".to_owned()),
        Err(e) => Err(format!("undecodable reply from the agent: {e}")),
    }
}

/// Hands a record logged on the agent to this program's logger, with the
/// host in front of the message, before the replies that follow it.
fn relog(host: &str, level: u8, target: &str, message: &str) {
    let level = wire::level_from_wire(level).unwrap_or(log::Level::Trace);
    // The controller's level may have changed since the agent started.
    if level > log::max_level() {
        return;
    }
    // The logger is this program's code, run on the I/O thread: its panic
    // must not end that thread.
    let _ = panic::catch_unwind(|| {
        // What the host sent reaches a terminal: no control characters.
        let target = crate::output::printable(target);
        let message = crate::output::printable(message);
        let metadata = log::Metadata::builder()
            .level(level)
            .target(&target)
            .build();
        if log::logger().enabled(&metadata) {
            log::logger().log(
                &log::Record::builder()
                    .level(level)
                    .target(&target)
                    .args(format_args!("[{host}] {message}"))
                    .build(),
            );
        }
    });
}

/// Waits until one of `fds` (descriptor and events; `None` is left out)
/// is ready or `until` passes; says which are ready. An error or hang-up
/// counts as ready: the read or write that follows reports it.
fn poll<const N: usize>(
    fds: [Option<(RawFd, libc::c_short)>; N],
    until: Option<Instant>,
) -> [bool; N] {
    let mut polled = fds.map(|fd| libc::pollfd {
        // A negative descriptor is ignored by poll.
        fd: fd.map_or(-1, |(fd, _)| fd),
        events: fd.map_or(0, |(_, events)| events),
        revents: 0,
    });
    let left = until.map(|at| at.saturating_duration_since(Instant::now()));
    #[cfg(target_os = "linux")]
    let n = {
        // To the microsecond, as deadlines are.
        let timeout = left.map(|left| libc::timespec {
            tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: left.subsec_nanos() as _,
        });
        let timeout = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `polled` is valid for its N entries and `timeout` (null
        // or a timespec that outlives it) for the whole call.
        unsafe {
            libc::ppoll(
                polled.as_mut_ptr(),
                N as libc::nfds_t,
                timeout,
                std::ptr::null(),
            )
        }
    };
    #[cfg(not(target_os = "linux"))]
    let n = {
        // Round up: waking a little early would only poll again.
        let ms = left.map_or(-1, |left| {
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `polled` is valid for its N entries for the whole call.
        unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, ms) }
    };
    if n < 0 {
        // EINTR (or ENOMEM): the caller looks again, deadlines first.
        return [false; N];
    }
    polled.map(|p| p.revents != 0)
}
