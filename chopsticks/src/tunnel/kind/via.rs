//! Through a bastion's agent: the bastion's agent runs `ssh` to the inner
//! host (with the inner host's bootstrap, as an ssh tunnel would) and
//! relays its three streams over one call with streams; here, pipes stand
//! for them, so the inner tunnel's connection is an ordinary one. Many
//! inner tunnels share the bastion's one connection: the bastion does
//! their ssh handshakes, and the slow link carries only bytes.
//!
//! On the relay's output stream, the inner ssh's stdout and stderr come as
//! records: a tag byte (`0` stdout, `1` stderr), a little-endian `u32`
//! length, the bytes.

use chopsticks_agent::sync::Unpoisoned;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use crate::agent::stream;
use crate::contract::{PREAMBLE, UPLOAD_MARKER};
use crate::remote;
use crate::tunnel::conn::{pipe, Link, Transport};
use crate::tunnel::{Pending, Tunnel};

/// A record's tag: the inner ssh's stdout.
const STDOUT: u8 = 0;
/// A record's tag: its stderr.
const STDERR: u8 = 1;
/// The longest record a relay writes (one read of its child's output).
const MAX_RECORD: usize = 64 * 1024;

/// The bastion a tunnel is reached through: a handle on its tunnel that
/// does not close it.
pub(crate) struct Via(Tunnel);

impl Via {
    pub(crate) fn of(bastion: &Tunnel) -> Via {
        Via(Tunnel {
            conn: Arc::clone(&bastion.conn),
            owns: false,
        })
    }

    pub(crate) fn host(&self) -> &str {
        self.0.host()
    }

    /// How deep the bastion's agent sits.
    pub(crate) fn depth(&self) -> u32 {
        self.0.conn.depth()
    }
}

impl Clone for Via {
    fn clone(&self) -> Via {
        Via::of(&self.0)
    }
}

impl fmt::Debug for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Via({})", self.0.host())
    }
}

impl PartialEq for Via {
    fn eq(&self, other: &Via) -> bool {
        Arc::ptr_eq(&self.0.conn, &other.0.conn)
    }
}

/// Runs `argv` on this host (the bastion) and relays its streams over the
/// call's: the input stream to its stdin, its stdout and stderr to the
/// output stream as records. Returns its exit code (128 + the signal that
/// ended it). Cancelling the call stops it.
///
/// `serve` is the inner session's nonce and the agent it runs: when the
/// inner bootstrap asks for that agent and it is this very program (the
/// bastion runs the controller's own executable), the bastion sends its
/// own copy, and the request never crosses the slow link.
#[remote]
pub fn relay(argv: Vec<String>, serve: Option<(String, String)>) -> io::Result<i32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::other("nothing to relay"));
    };
    let mut input = stream::input()?;
    let wanted = input.wanted();
    let output = Arc::new(Mutex::new(stream::output()?));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("a piped stream is missing"));
    };
    let stdin = Arc::new(Mutex::new(Some(stdin)));
    // The controller gone (the call cancelled, the tunnel lost): stop ssh,
    // unless it was reaped already (its pid may be another's by then).
    let reaped = Arc::new(Mutex::new(false));
    let stop: Arc<dyn Fn() + Send + Sync> = {
        let reaped = Arc::clone(&reaped);
        Arc::new(move || {
            // Held across the kill: the child cannot be reaped meanwhile.
            let reaped = reaped.lock().unpoisoned();
            if !*reaped {
                // SAFETY: a plain system call on our own child, not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    };
    {
        let (stdin, stop) = (Arc::clone(&stdin), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut stdin = stdin.lock().unpoisoned();
                        let written = stdin.as_mut().map(|s| s.write_all(&buf[..n]));
                        if !matches!(written, Some(Ok(()))) {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return stop(),
                }
            }
            // Dropping stdin ends the inner agent's input.
            stdin.lock().unpoisoned().take();
        });
    }
    // A cancel after the input ended (ssh silent, its pumps waiting in
    // `read`) stops ssh too.
    {
        let (reaped, stop) = (Arc::clone(&reaped), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !*reaped.lock().unpoisoned() {
                if !wanted() {
                    return stop();
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    }
    let upload = serve.map(|(nonce, sha256)| Upload {
        marker: format!("{UPLOAD_MARKER} {nonce} "),
        preamble: format!("{PREAMBLE} {nonce}"),
        sha256,
        line: Vec::new(),
        stdin: Arc::clone(&stdin),
    });
    let pump = |tag: u8, mut from: Box<dyn Read + Send>, mut upload: Option<Upload>| {
        let (output, stop) = (Arc::clone(&output), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let data = match &mut upload {
                    Some(serving) => {
                        let (kept, done) = serving.look(&buf[..n]);
                        if done {
                            upload = None;
                        }
                        kept
                    }
                    None => buf[..n].to_vec(),
                };
                if data.is_empty() {
                    continue;
                }
                let mut out = output.lock().unpoisoned();
                let record = [&[tag][..], &(data.len() as u32).to_le_bytes(), &data].concat();
                if out.write_all(&record).and_then(|()| out.flush()).is_err() {
                    return stop();
                }
            }
        })
    };
    let threads = [
        pump(STDOUT, Box::new(stdout), upload),
        pump(STDERR, Box::new(stderr), None),
    ];
    for thread in threads {
        let _ = thread.join();
    }
    // Wait for the exit without reaping, so that `stop` never signals a
    // reused pid; then reap.
    // SAFETY: siginfo_t is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pid of our child and a valid siginfo_t.
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    *reaped.lock().unpoisoned() = true;
    let status = child.wait()?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The inner bootstrap's stdout, watched for its upload request until its
/// agent greets.
struct Upload {
    /// `chopsticks-upload NONCE ` (then `uname -s -m`).
    marker: String,
    /// `chopsticks-agent NONCE`: past it, nothing more is looked at.
    preamble: String,
    /// The agent the inner host asks for.
    sha256: String,
    /// The unfinished line.
    line: Vec<u8>,
    stdin: Arc<Mutex<Option<std::process::ChildStdin>>>,
}

impl Upload {
    /// Passes on what `data` holds but an upload request this bastion can
    /// answer itself (it answers it); and whether the watch is over.
    fn look(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut kept = Vec::with_capacity(data.len());
        let mut rest = data;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..=end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.line);
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text == self.preamble {
                kept.extend_from_slice(&line);
                kept.extend_from_slice(rest);
                return (kept, true);
            }
            let answered = text
                .strip_prefix(&self.marker)
                .is_some_and(|platform| self.answer(platform));
            if !answered {
                kept.extend_from_slice(&line);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > 64 * 1024 {
            // Not a bootstrap's output: stop looking.
            kept.append(&mut self.line);
            return (kept, true);
        }
        (kept, false)
    }

    /// Sends this program to the inner bootstrap when it is the agent asked
    /// for, on this machine; whether it did.
    fn answer(&self, platform: &str) -> bool {
        let mut words = platform.split_whitespace();
        let same_machine = words.next() == Some("Linux")
            && words.next().and_then(crate::tunnel::arch::rust_arch)
                == Some(std::env::consts::ARCH);
        let Some((sha256, gz)) = own_agent() else {
            return false;
        };
        if !same_machine || *sha256 != self.sha256 {
            return false;
        }
        let mut stdin = self.stdin.lock().unpoisoned();
        let Some(stdin) = stdin.as_mut() else {
            return false;
        };
        let sent = stdin
            .write_all(format!("{}\n", gz.len()).as_bytes())
            .and_then(|()| stdin.write_all(gz));
        sent.is_ok()
    }
}

/// This program's executable, as this host runs it: its SHA-256 and its
/// gzip, made once.
fn own_agent() -> Option<&'static (String, Vec<u8>)> {
    static OWN: std::sync::OnceLock<Option<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        use sha2::Digest;
        let data = std::fs::read("/proc/self/exe").ok()?;
        let sha256: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&data).ok()?;
        Some((sha256, gz.finish().ok()?))
    })
    .as_ref()
}

/// What carries an inner tunnel: the relay call on the bastion.
struct Relay {
    /// The inner ssh's exit status, once the relay returned.
    status: Arc<Mutex<Option<ExitStatus>>>,
    cancel: Option<Box<dyn Fn() + Send>>,
}

impl Transport for Relay {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(*self.status.lock().unpoisoned())
    }

    fn kill(&mut self) {
        if let Some(cancel) = &self.cancel {
            cancel();
        }
        let mut status = self.status.lock().unpoisoned();
        status.get_or_insert(ExitStatus::from_raw(libc::SIGKILL));
    }
}

/// Starts `argv` on the bastion and makes a link of its streams; `serve`
/// as [`relay`] takes it.
pub(crate) fn link(
    via: &Via,
    argv: Vec<String>,
    serve: Option<(String, String)>,
) -> io::Result<Link> {
    let call = via
        .0
        .call_streaming(relay, (argv, serve), true, true)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut call = call;
    // The relay lasts as long as the inner tunnel: the bastion's call
    // timeout bounds the inner tunnel's calls, not its life.
    call.set_timeout_from(std::time::Instant::now(), std::time::Duration::MAX);
    let cancel = call.canceller();
    let (mut up, mut down, pending) = call.split();
    let (to_agent_r, to_agent) = pipe()?;
    let (from_agent, from_agent_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;
    std::thread::Builder::new()
        .name(format!("chopsticks-via-{}", via.host()))
        .spawn(move || {
            let mut from = to_agent_r;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => return up.end(),
                    Ok(n) => {
                        if up.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })?;
    let status = Arc::new(Mutex::new(None));
    {
        let status = Arc::clone(&status);
        std::thread::Builder::new()
            .name(format!("chopsticks-via-{}", via.host()))
            .spawn(move || {
                demux(&mut down, from_agent_w, stderr_w);
                let code = match pending_result(pending) {
                    Some(code) => ExitStatus::from_raw((code & 0xff) << 8),
                    None => ExitStatus::from_raw(libc::SIGKILL),
                };
                status.lock().unpoisoned().get_or_insert(code);
            })?;
    }
    Ok(Link {
        to_agent,
        from_agent,
        stderr,
        transport: Box::new(Relay { status, cancel }),
    })
}

fn pending_result(pending: Pending<i32>) -> Option<i32> {
    pending.wait().ok()
}

/// Cuts the relay's records apart into the inner ssh's stdout and stderr,
/// until the output stream ends; then closes both.
fn demux(down: &mut impl Read, mut stdout: File, mut stderr: File) {
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match down.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some(header) = buf.get(at..at + 5) {
            let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if len > MAX_RECORD {
                // Not what a relay writes: the stream is corrupt.
                return;
            }
            let Some(bytes) = buf.get(at + 5..at + 5 + len) else {
                break;
            };
            let to = if header[0] == STDERR {
                &mut stderr
            } else {
                &mut stdout
            };
            if to.write_all(bytes).is_err() && header[0] != STDERR {
                return;
            }
            at += 5 + len;
        }
        buf.drain(..at);
    }
}
