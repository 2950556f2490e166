//! One agent process: starting and greeting it, sending calls, closing it,
//! and what happens when it goes away. Who reads its replies is `reader`.

mod reader;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::greet::{greet, Event, Greeted, Refusal, Ship};
use super::pending::{Lost, Pending, Slot};
use super::stderr::{self, Tail};
use crate::error::{Error, Result};
use crate::wire::{self, Hello, Request};
use reader::ReadFor;

/// How long a dying agent gets to finish its stderr and exit before an
/// error is reported without them.
const LAST_WORDS: Duration = Duration::from_millis(300);
/// How long `close` waits for a graceful exit before killing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How to start and greet one agent.
pub(crate) struct Launch {
    pub host: String,
    /// For error messages: what was started.
    pub program: String,
    pub command: Command,
    pub nonce: String,
    /// Bound on reaching the agent's hello, upload excluded.
    pub connect_timeout: Duration,
    /// Bound on an upload, when the bootstrap asks for one.
    pub upload_timeout: Duration,
    /// What to upload when asked.
    pub ship: Option<Ship>,
    /// Turns a failed start into the error the user sees.
    pub explain: fn(&str, Failed) -> Error,
}

/// A start that did not reach the agent's hello.
pub(crate) struct Failed {
    pub refusal: Refusal,
    /// The exit status of what was started, when it ended.
    pub status: Option<ExitStatus>,
    /// Its last stderr lines.
    pub stderr: Vec<String>,
}

pub(crate) struct Conn {
    host: String,
    stdin: Mutex<Option<ChildStdin>>,
    state: Mutex<State>,
    /// The agent's output; only the holder of the reader role touches it.
    stream: Mutex<Option<Stream>>,
    /// Wakes the background reader.
    background: Condvar,
    next_req: AtomicU64,
    /// The default bound of `Pending::wait`, in nanoseconds; `u64::MAX` for none.
    call_timeout: AtomicU64,
    child: Mutex<Child>,
    closing: AtomicBool,
    /// The agent's functions, when its registry differs from ours.
    known: Option<HashSet<u64>>,
    hello: Hello,
    uploaded: bool,
    tail: Arc<Tail>,
}

struct Stream {
    reader: BufReader<ChildStdout>,
    buf: Vec<u8>,
}

#[derive(Default)]
struct State {
    /// Calls sent and not yet answered, by request ID.
    waiting: HashMap<u64, Arc<Slot>>,
    /// Set once the agent is gone: why, and its last stderr lines.
    closed: Option<(String, Vec<String>)>,
    /// Someone holds the reader role.
    reading: bool,
    /// Blocking waiters to wake when the reader role is released, oldest
    /// first (their replies are likely to come first).
    sleepers: VecDeque<Arc<Slot>>,
    /// Futures waiting for a reply (the background reader serves them).
    futures: usize,
    /// The background reader thread runs.
    background_started: bool,
}

/// Why a frame was not (fully) sent.
enum Unsent {
    /// The agent is gone (or the tunnel closed).
    Gone,
    /// The call's deadline passed; `partly` when some bytes went out.
    TimedOut { partly: bool },
}

impl Conn {
    pub(crate) fn start(launch: Launch) -> Result<Arc<Conn>> {
        let Launch {
            host,
            program,
            mut command,
            nonce,
            connect_timeout,
            upload_timeout,
            ship,
            explain,
        } = launch;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_error = |source: std::io::Error| Error::Spawn {
            host: host.clone(),
            program: program.clone(),
            source: Arc::new(source),
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let (stdin, stdout, err) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => unreachable!("all three streams were piped"),
            };
        let tail = match stderr::forward(&host, err) {
            Ok(tail) => tail,
            Err(e) => {
                reap(&mut child);
                return Err(spawn_error(e));
            }
        };

        let (tx, rx) = mpsc::channel::<Event>();
        let greeter = thread::Builder::new()
            .name(format!("chopsticks-hello-{host}"))
            .spawn(move || {
                let greeting = greet(stdout, stdin, &nonce, ship.as_ref(), &tx);
                let _ = tx.send(Event::Done(greeting));
            });
        if let Err(e) = greeter {
            reap(&mut child);
            return Err(spawn_error(e));
        }
        let mut bound = connect_timeout;
        let greeting = loop {
            match rx.recv_timeout(bound) {
                Ok(Event::Uploading) => bound = upload_timeout,
                Ok(Event::Done(greeting)) => break greeting,
                Err(_) => {
                    break Err(Refusal::Agent(format!(
                        "no answer within {bound:?}; it was stopped"
                    )))
                }
            }
        };
        let fail = |child: &mut Child, refusal: Refusal| {
            let status = wait_exit(child, LAST_WORDS);
            reap(child);
            let stderr = tail.lines_after_eof(LAST_WORDS);
            explain(
                &host,
                Failed {
                    refusal,
                    status,
                    stderr,
                },
            )
        };
        let Greeted {
            hello,
            reader,
            stdin,
            uploaded,
        } = match greeting {
            Ok(greeting) => greeting,
            Err(refusal) => return Err(fail(&mut child, refusal)),
        };
        if hello.protocol != wire::PROTOCOL_VERSION {
            let message = format!(
                "the agent speaks protocol {} (chopsticks {}), this program speaks {} \
                 (chopsticks {}); rebuild the agent binary with the same chopsticks version",
                hello.protocol,
                hello.version,
                wire::PROTOCOL_VERSION,
                env!("CARGO_PKG_VERSION"),
            );
            return Err(fail(&mut child, Refusal::Stale(message)));
        }
        let ours = match crate::agent::Registry::get() {
            Ok(ours) => ours,
            Err(e) => {
                reap(&mut child);
                return Err(Error::Handshake {
                    host,
                    message: format!("this program's own registry is broken: {e}"),
                    stderr: Vec::new(),
                });
            }
        };
        let known = (hello.fingerprint != ours.fingerprint())
            .then(|| hello.functions.iter().copied().collect());

        // Writes never block: a full pipe is handled by `send`.
        set_nonblocking(&stdin);
        tail.go_live();
        let conn = Arc::new(Conn {
            host,
            stdin: Mutex::new(Some(stdin)),
            state: Mutex::new(State::default()),
            stream: Mutex::new(Some(Stream {
                reader,
                buf: Vec::new(),
            })),
            background: Condvar::new(),
            next_req: AtomicU64::new(1),
            call_timeout: AtomicU64::new(u64::MAX),
            child: Mutex::new(child),
            closing: AtomicBool::new(false),
            known,
            hello,
            uploaded,
            tail,
        });
        Ok(conn)
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn hello(&self) -> &Hello {
        &self.hello
    }

    pub(crate) fn uploaded(&self) -> bool {
        self.uploaded
    }

    pub(crate) fn call_timeout(&self) -> Option<Duration> {
        match self.call_timeout.load(Ordering::Relaxed) {
            u64::MAX => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn set_call_timeout(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(u64::MAX, |d| d.as_nanos().min(u64::MAX as u128 - 1) as u64);
        self.call_timeout.store(nanos, Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one call; the result arrives in the returned `Pending`.
    pub(crate) fn call<A: Serialize, T: serde::de::DeserializeOwned>(
        self: &Arc<Self>,
        fn_id: u64,
        function: &'static str,
        args: &A,
    ) -> Pending<T> {
        let host = || self.host.clone();
        if self
            .known
            .as_ref()
            .is_some_and(|known| !known.contains(&fn_id))
        {
            return Pending::failed(Error::UnknownFunction {
                host: host(),
                function,
            });
        }
        let encode_error = |message: String| Error::Encode {
            host: host(),
            function,
            message,
        };
        let args = match postcard::to_allocvec(args) {
            Ok(args) => args,
            Err(e) => return Pending::failed(encode_error(e.to_string())),
        };
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let frame = match wire::encode_frame(&Request::Call {
            req,
            fn_id,
            args: &args,
        }) {
            Ok(frame) => frame,
            Err(e) => return Pending::failed(encode_error(e.to_string())),
        };
        let slot = Arc::new(Slot::default());
        {
            let mut state = self.state();
            if let Some((reason, stderr)) = &state.closed {
                return Pending::failed(Error::Disconnected {
                    host: host(),
                    function: Some(function),
                    reason: reason.clone(),
                    stderr: stderr.clone(),
                });
            }
            state.waiting.insert(req, Arc::clone(&slot));
        }
        let deadline = self
            .call_timeout()
            .and_then(|t| Instant::now().checked_add(t));
        match self.send(&frame, deadline) {
            // A failed write means the agent is gone: the next reader sees
            // the end of its output and fails every waiting call, this one
            // included.
            Ok(()) | Err(Unsent::Gone) => {}
            Err(Unsent::TimedOut { partly }) => {
                self.state().waiting.remove(&req);
                let after = self.call_timeout().unwrap_or_default();
                if partly {
                    // Half a frame is in the pipe: the stream is unusable.
                    reap(&mut self.child.lock().unwrap_or_else(PoisonError::into_inner));
                    self.shut(
                        format!("the agent stopped reading while `{function}` was sent"),
                        Vec::new(),
                    );
                }
                return Pending::failed(Error::Timeout {
                    host: host(),
                    function,
                    after,
                });
            }
        }
        Pending::in_flight(Arc::clone(self), slot, req, function)
    }

    /// Writes one frame. While the agent does not take it (its replies fill
    /// the pipe back to us and nobody reads them), this thread reads them,
    /// so that many calls sent without waiting cannot deadlock.
    fn send(&self, frame: &[u8], deadline: Option<Instant>) -> std::result::Result<(), Unsent> {
        let mut guard = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(stdin) = guard.as_mut() else {
            return Err(Unsent::Gone);
        };
        let mut written = 0;
        while written < frame.len() {
            match stdin.write(&frame[written..]) {
                Ok(0) => return Err(Unsent::Gone),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.take_role_if_free() {
                        self.read(ReadFor::Available);
                        self.release_role();
                    }
                    if deadline.is_some_and(|at| Instant::now() >= at) {
                        return Err(Unsent::TimedOut {
                            partly: written > 0,
                        });
                    }
                    let pause = Duration::from_millis(20);
                    let until = deadline.map_or(pause, |at| {
                        at.saturating_duration_since(Instant::now()).min(pause)
                    });
                    writable(stdin, until);
                }
                Err(_) => return Err(Unsent::Gone),
            }
        }
        Ok(())
    }

    /// Drops interest in a call's result.
    pub(crate) fn forget(&self, req: u64, slot: &Slot) {
        let was_future = slot.abandon();
        let mut state = self.state();
        state.waiting.remove(&req);
        if was_future {
            state.futures -= 1;
        }
    }

    /// Fails every waiting call and refuses new ones.
    fn shut(&self, reason: String, stderr: Vec<String>) {
        let waiting = {
            let mut state = self.state();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some((reason.clone(), stderr.clone()));
            self.background.notify_all();
            std::mem::take(&mut state.waiting)
        };
        let mut futures = 0;
        for slot in waiting.into_values() {
            let lost = Lost::Closed {
                reason: reason.clone(),
                stderr: stderr.clone(),
            };
            futures += usize::from(slot.complete(Err(lost)));
        }
        self.state().futures -= futures;
    }

    /// Asks the agent to exit, kills it after [`CLOSE_GRACE`], and fails the
    /// calls still waiting. Idempotent.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let stdin = match self.stdin.try_lock() {
            Ok(mut guard) => guard.take(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
            // A sender is stuck on a full pipe: stop the agent, which
            // unblocks it, instead of waiting for it.
            Err(std::sync::TryLockError::WouldBlock) => {
                reap(&mut self.child.lock().unwrap_or_else(PoisonError::into_inner));
                None
            }
        };
        if let Some(mut stdin) = stdin {
            if let Ok(frame) = wire::encode_frame(&Request::Shutdown) {
                // Non-blocking: if the pipe is full, closing it ends the agent too.
                let _ = stdin.write_all(&frame);
            }
        }
        {
            let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            if wait_exit(&mut child, CLOSE_GRACE).is_none() {
                reap(&mut child);
            }
        }
        self.shut("the tunnel was closed".into(), Vec::new());
    }

    /// Called by a reader when the agent's output ends.
    fn lost(&self, why: Option<String>) {
        if self.closing.load(Ordering::SeqCst) {
            return self.shut("the tunnel was closed".into(), Vec::new());
        }
        let stderr = self.tail.lines_after_eof(LAST_WORDS);
        let status = {
            let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            wait_exit(&mut child, LAST_WORDS)
        };
        let mut reason = match status {
            Some(status) => describe(status),
            None => "its output ended".to_owned(),
        };
        if let Some(why) = why {
            reason = format!("{why}; {reason}");
        }
        self.shut(reason, stderr);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        if matches!(child.try_wait(), Ok(None)) {
            reap(child);
        }
    }
}

fn set_nonblocking(stdin: &ChildStdin) {
    let fd = stdin.as_raw_fd();
    // SAFETY: fcntl on a valid fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Waits at most `bound` until `stdin` can take more bytes.
fn writable(stdin: &ChildStdin, bound: Duration) {
    let mut fd = libc::pollfd {
        fd: stdin.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = bound.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) };
}

/// Waits at most `bound` for the child to exit.
fn wait_exit(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => return None,
        }
    }
}

/// Kills and reaps the child; no process is left behind.
fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the agent exited with status {code}"),
        (None, Some(signal)) => format!("the agent was killed by signal {signal}"),
        _ => format!("the agent ended: {status}"),
    }
}
