//! One agent process: its pipes, the calls waiting on it, and the thread
//! that reads its replies.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pending::{Lost, Pending, Slot};
use super::stderr::{self, Tail};
use crate::error::{Error, Result};
use crate::wire::{self, Hello, Request, Response};

/// How long a dying agent gets to finish its stderr and exit before an
/// error is reported without them.
const LAST_WORDS: Duration = Duration::from_millis(300);
/// How long `close` waits for a graceful exit before killing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Junk (login banners, test-harness chatter) tolerated before the preamble.
const MAX_JUNK: usize = 64 * 1024;

/// How to start and greet one agent.
pub(crate) struct Launch {
    pub host: String,
    /// For error messages: what was started.
    pub program: String,
    pub command: Command,
    pub nonce: String,
    pub connect_timeout: Duration,
    /// Advice added when the agent exits before its hello.
    pub advice: &'static str,
}

pub(crate) struct Conn {
    host: String,
    stdin: Mutex<Option<ChildStdin>>,
    slots: Mutex<Slots>,
    next_req: AtomicU64,
    child: Mutex<Child>,
    closing: AtomicBool,
    /// The agent's functions, when its registry differs from ours.
    known: Option<HashSet<u64>>,
    hello: Hello,
    tail: Arc<Tail>,
}

#[derive(Default)]
struct Slots {
    waiting: HashMap<u64, Arc<Slot>>,
    closed: Option<(String, Vec<String>)>,
}

type Greeting = std::result::Result<(Hello, BufReader<ChildStdout>, ChildStdin), String>;

impl Conn {
    pub(crate) fn start(launch: Launch) -> Result<Arc<Conn>> {
        let Launch {
            host,
            program,
            mut command,
            nonce,
            connect_timeout,
            advice,
        } = launch;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawn_error = |source| Error::Spawn {
            host: host.clone(),
            program: program.clone(),
            source,
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

        let (tx, rx) = mpsc::channel::<Greeting>();
        let greeter = thread::Builder::new()
            .name(format!("chopsticks-hello-{host}"))
            .spawn(move || {
                let _ = tx.send(greet(stdout, stdin, &nonce));
            });
        if let Err(e) = greeter {
            reap(&mut child);
            return Err(spawn_error(e));
        }
        let handshake_error = |child: &mut Child, message: String| {
            reap(child);
            Error::Handshake {
                host: host.clone(),
                message,
                stderr: tail.lines_after_eof(LAST_WORDS),
            }
        };
        let (hello, reader, stdin) = match rx.recv_timeout(connect_timeout) {
            Ok(Ok(greeting)) => greeting,
            Ok(Err(message)) => {
                let status = wait_exit(&mut child, LAST_WORDS);
                let message = match status {
                    Some(status) => format!("{message} ({}){advice}", describe(status)),
                    None => format!("{message}{advice}"),
                };
                return Err(handshake_error(&mut child, message));
            }
            Err(_) => {
                let message =
                    format!("no hello within {connect_timeout:?}; the agent was stopped{advice}");
                return Err(handshake_error(&mut child, message));
            }
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
            return Err(handshake_error(&mut child, message));
        }
        let ours = crate::agent::Registry::get().map_err(|e| Error::Handshake {
            host: host.clone(),
            message: format!("this program's own registry is broken: {e}"),
            stderr: Vec::new(),
        })?;
        let known = (hello.fingerprint != ours.fingerprint())
            .then(|| hello.functions.iter().copied().collect());

        let conn = Arc::new(Conn {
            host,
            stdin: Mutex::new(Some(stdin)),
            slots: Mutex::new(Slots::default()),
            next_req: AtomicU64::new(1),
            child: Mutex::new(child),
            closing: AtomicBool::new(false),
            known,
            hello,
            tail,
        });
        let weak = Arc::downgrade(&conn);
        let spawned = thread::Builder::new()
            .name(format!("chopsticks-reply-{}", conn.host))
            .spawn(move || read_replies(reader, weak));
        if let Err(e) = spawned {
            conn.close();
            return Err(Error::Spawn {
                host: conn.host.clone(),
                program,
                source: e,
            });
        }
        Ok(conn)
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn hello(&self) -> &Hello {
        &self.hello
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
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
            let mut slots = self.slots();
            if let Some((reason, stderr)) = &slots.closed {
                return Pending::failed(Error::Disconnected {
                    host: host(),
                    function: Some(function),
                    reason: reason.clone(),
                    stderr: stderr.clone(),
                });
            }
            slots.waiting.insert(req, Arc::clone(&slot));
        }
        let mut stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        // A failed write means the agent is gone: the reply reader sees the
        // end of its output and fails every waiting call, this one included.
        if let Some(stdin) = stdin.as_mut() {
            let _ = wire::write_frame(stdin, &frame);
        }
        drop(stdin);
        Pending::in_flight(Arc::clone(self), slot, req, function)
    }

    /// Drops interest in a call's result.
    pub(crate) fn forget(&self, req: u64) {
        self.slots().waiting.remove(&req);
    }

    /// Fails every waiting call and refuses new ones.
    fn shut(&self, reason: String, stderr: Vec<String>) {
        let waiting = {
            let mut slots = self.slots();
            if slots.closed.is_some() {
                return;
            }
            slots.closed = Some((reason.clone(), stderr.clone()));
            std::mem::take(&mut slots.waiting)
        };
        for slot in waiting.into_values() {
            slot.complete(Err(Lost::Closed {
                reason: reason.clone(),
                stderr: stderr.clone(),
            }));
        }
    }

    /// Asks the agent to exit, kills it after [`CLOSE_GRACE`], and fails the
    /// calls still waiting. Idempotent.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        if let Some(mut stdin) = self
            .stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            if let Ok(frame) = wire::encode_frame(&Request::Shutdown) {
                let _ = wire::write_frame(&mut stdin, &frame);
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

    /// Called by the reply reader when the agent's output ends.
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

/// Reads lines up to the preamble, then the hello frame.
fn greet(stdout: ChildStdout, stdin: ChildStdin, nonce: &str) -> Greeting {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let expected = format!("{} {nonce}", wire::PREAMBLE);
    let mut junk = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take((MAX_JUNK + 1 - junk.len().min(MAX_JUNK)) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading the agent's output: {e}"))?;
        if n == 0 {
            return Err(exited_early(&junk));
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim_end_matches(['\n', '\r']) == expected {
            break;
        }
        junk.extend_from_slice(&line);
        if junk.len() > MAX_JUNK {
            return Err(format!(
                "it wrote {MAX_JUNK} bytes without the chopsticks preamble; it starts with: {:?}",
                preview(&junk)
            ));
        }
    }
    let mut buf = Vec::new();
    match wire::read_frame(&mut reader, &mut buf) {
        Ok(true) => {}
        Ok(false) => return Err("it exited right after its preamble".into()),
        Err(e) => return Err(format!("reading its hello: {e}")),
    }
    match postcard::from_bytes::<Response>(&buf) {
        Ok(Response::Hello(hello)) => Ok((hello, reader, stdin)),
        Ok(Response::Reply { .. }) => Err("it replied before saying hello".into()),
        // Another version: the protocol number comes right after the variant tag.
        Err(_) => match postcard::take_from_bytes::<(u8, u32)>(&buf) {
            Ok(((0, protocol), _)) if protocol != wire::PROTOCOL_VERSION => Err(format!(
                "the agent speaks protocol {protocol}, this program speaks {}; rebuild the agent \
                 binary with the same chopsticks version",
                wire::PROTOCOL_VERSION
            )),
            _ => Err("its hello is undecodable".into()),
        },
    }
}

fn exited_early(junk: &[u8]) -> String {
    if junk.is_empty() {
        "it exited before saying hello".into()
    } else {
        format!(
            "it exited before saying hello; it printed: {:?}",
            preview(junk)
        )
    }
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]);
    text.trim_end().to_owned()
}

fn read_replies(mut reader: BufReader<ChildStdout>, conn: std::sync::Weak<Conn>) {
    let mut buf = Vec::new();
    let why = loop {
        match wire::read_frame(&mut reader, &mut buf) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(format!("reading the agent's output failed: {e}")),
        }
        let Some(conn) = conn.upgrade() else { return };
        match postcard::from_bytes::<Response>(&buf) {
            Ok(Response::Reply { req, result }) => {
                let slot = conn.slots().waiting.remove(&req);
                if let Some(slot) = slot {
                    slot.complete(result.map_err(Lost::Failed));
                }
            }
            Ok(Response::Hello(_)) => break Some("the agent said hello twice".into()),
            Err(e) => break Some(format!("undecodable reply from the agent: {e}")),
        }
    };
    if let Some(conn) = conn.upgrade() {
        if why.is_some() {
            // The stream is corrupt: stop the agent before reporting.
            reap(&mut conn.child.lock().unwrap_or_else(PoisonError::into_inner));
        }
        conn.lost(why);
    }
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

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the agent exited with status {code}"),
        (None, Some(signal)) => format!("the agent was killed by signal {signal}"),
        _ => format!("the agent ended: {status}"),
    }
}
