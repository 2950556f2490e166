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

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use crate::agent::stream;
use crate::remote;
use crate::tunnel::conn::{Link, Transport};
use crate::tunnel::{Pending, Tunnel};

/// A record's tag: the inner ssh's stdout.
const STDOUT: u8 = 0;
/// A record's tag: its stderr.
const STDERR: u8 = 1;

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
#[remote]
pub fn relay(argv: Vec<String>) -> io::Result<i32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::other("nothing to relay"));
    };
    let mut input = stream::input()?;
    let output = Arc::new(Mutex::new(stream::output()?));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("a piped stream is missing"));
    };
    // The controller gone (the call cancelled, the tunnel lost): stop ssh.
    let stop = move || {
        // SAFETY: a plain system call on our own child, not yet waited for.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if stdin.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return stop(),
            }
        }
        // Dropping stdin ends the inner agent's input.
    });
    let pump = |tag: u8, mut from: Box<dyn Read + Send>| {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut out = output.lock().unwrap_or_else(PoisonError::into_inner);
                let record = [&[tag][..], &(n as u32).to_le_bytes(), &buf[..n]].concat();
                if out.write_all(&record).and_then(|()| out.flush()).is_err() {
                    return stop();
                }
            }
        })
    };
    let threads = [
        pump(STDOUT, Box::new(stdout)),
        pump(STDERR, Box::new(stderr)),
    ];
    for thread in threads {
        let _ = thread.join();
    }
    let status = child.wait()?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// What carries an inner tunnel: the relay call on the bastion.
struct Relay {
    /// The inner ssh's exit status, once the relay returned.
    status: Arc<Mutex<Option<ExitStatus>>>,
    cancel: Option<Box<dyn Fn() + Send>>,
}

impl Transport for Relay {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(*self.status.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn kill(&mut self) {
        if let Some(cancel) = &self.cancel {
            cancel();
        }
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.get_or_insert(ExitStatus::from_raw(libc::SIGKILL));
    }
}

/// Starts `argv` on the bastion and makes a link of its streams.
pub(crate) fn link(via: &Via, argv: Vec<String>) -> io::Result<Link> {
    let call = via
        .0
        .call_streaming(relay, (argv,), true, true)
        .map_err(|e| io::Error::other(e.to_string()))?;
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
                status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(code);
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

/// A pipe as `(read end, write end)`, close-on-exec.
fn pipe() -> io::Result<(File, File)> {
    let (read, write) = io::pipe()?;
    Ok((
        File::from(OwnedFd::from(read)),
        File::from(OwnedFd::from(write)),
    ))
}
