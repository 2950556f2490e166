//! A session on a running ssh ControlMaster, opened without starting `ssh`.
//!
//! A shared ssh connection (`ControlMaster`) listens on a Unix socket, and
//! `ssh` started again for the host is only a small client of it: it asks
//! the master for a session, hands over its standard streams and waits for
//! the exit status. That client is a whole `ssh` process (dynamic linking of
//! its crypto library, page faults, its exit) for work of a few system
//! calls: most of what a call over a reused connection costs the machine.
//! This module is that client, in the tunnel's own process, speaking the
//! master's protocol as OpenSSH documents it (`PROTOCOL.mux`, version 4):
//! a hello each way, `MUX_C_NEW_SESSION` with the command, the three stream
//! descriptors passed with `SCM_RIGHTS`, then `MUX_S_SESSION_OPENED`; the
//! master relays the session as it would for `ssh`, and sends
//! `MUX_S_EXIT_MESSAGE` and closes the socket when it ends.
//!
//! Anything short of an opened session is an error the caller answers by
//! starting `ssh` after all, which tries the master itself and falls back
//! to a connection of its own.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Instant;

use crate::tunnel::conn::{interrupted, pipe, Link, Transport};

/// The protocol version this client speaks (OpenSSH's since 5.6).
const VERSION: u32 = 4;
const MSG_HELLO: u32 = 0x0000_0001;
const C_NEW_SESSION: u32 = 0x1000_0002;
const S_PERMISSION_DENIED: u32 = 0x8000_0002;
const S_FAILURE: u32 = 0x8000_0003;
const S_EXIT_MESSAGE: u32 = 0x8000_0004;
const S_SESSION_OPENED: u32 = 0x8000_0006;
/// No escape character (`ssh -e none`).
const NO_ESCAPE: u32 = 0xffff_ffff;
/// The request id of the one request this client makes.
const REQUEST: u32 = 1;
/// The largest message a master sends is an error text: anything longer
/// is not a master.
const MAX_MESSAGE: usize = 64 * 1024;
/// What `ssh` exits with when the master went away without an exit status.
const NO_STATUS: i32 = 255;
/// The largest request a master reads (OpenSSH's `CHANNEL_MUX_MAX_PACKET`).
const MAX_REQUEST: usize = 256 * 1024;
/// How often a wait for the master looks for Ctrl-C.
const INTERRUPT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Opens a session running `command` on the master listening at `socket`,
/// sending `env` (`NAME=value`, which the master filters by its `SendEnv`,
/// as for `ssh`); gives up at `deadline`, or when this program is
/// interrupted (Ctrl-C).
///
/// # Errors
/// No master there: `NotFound`, `ConnectionRefused` (a socket its master
/// left); `Interrupted`; any other kind: a master that does not answer by
/// `deadline` (`TimedOut`), is another user's, refuses the session or
/// speaks another protocol, or a request too large for it.
pub(super) fn open(
    socket: &Path,
    command: &str,
    env: &[OsString],
    deadline: Instant,
) -> io::Result<Link> {
    let mut sock = connect(socket, deadline)?;
    ours(&sock)?;
    // Everything is sent at once: the master reads each message by its
    // length, so the hello need not be answered first.
    let mut request = message(MSG_HELLO, |m| put_u32(m, VERSION));
    request.extend(message(C_NEW_SESSION, |m| {
        put_u32(m, REQUEST);
        put_bytes(m, b""); // reserved
        for flag in [0, 0, 0, 0] {
            put_u32(m, flag); // tty, X11, agent forwarding, subsystem
        }
        put_u32(m, NO_ESCAPE);
        let term = std::env::var_os("TERM").unwrap_or_default();
        put_bytes(m, term.as_bytes());
        put_bytes(m, command.as_bytes());
        for var in env {
            if !var.as_bytes().contains(&0) {
                put_bytes(m, var.as_bytes());
            }
        }
    }));
    if request.len() > MAX_REQUEST {
        return Err(refused(
            "the session's request is larger than a master takes",
        ));
    }
    let (to_agent_read, to_agent) = pipe()?;
    let (from_agent, from_agent_write) = pipe()?;
    let (stderr, stderr_write) = pipe()?;
    set_timeouts(&sock, deadline)?;
    send(&sock, &request, deadline)?;
    for fd in [&to_agent_read, &from_agent_write, &stderr_write] {
        send_fd(&sock, fd.as_raw_fd(), deadline)?;
    }
    // The master holds the remote ends now.
    drop((to_agent_read, from_agent_write, stderr_write));
    let mut inbox = Vec::new();
    let hello = read_message(&mut sock, &mut inbox, deadline)?;
    match (u32_at(&hello, 0), u32_at(&hello, 4)) {
        (Some(MSG_HELLO), Some(VERSION)) => {}
        _ => return Err(refused("it does not speak version 4 of the mux protocol")),
    }
    let reply = read_message(&mut sock, &mut inbox, deadline)?;
    let (kind, id) = (u32_at(&reply, 0), u32_at(&reply, 4));
    let session = match (kind, id) {
        (Some(S_SESSION_OPENED), Some(REQUEST)) => u32_at(&reply, 8),
        (Some(S_PERMISSION_DENIED | S_FAILURE), Some(REQUEST)) => {
            let why = string_at(&reply, 8).unwrap_or_default();
            return Err(refused(&format!("it refused the session: {why}")));
        }
        _ => None,
    };
    let session = session.ok_or_else(|| refused("it answered out of protocol"))?;
    sock.set_nonblocking(true)?;
    let mut session = Session {
        sock,
        id: session,
        inbox,
        exit: None,
        ended: None,
    };
    // What came with the reply (a session that ended at once says so).
    session.read_messages()?;
    Ok(Link {
        to_agent,
        from_agent,
        stderr,
        transport: Box::new(session),
    })
}

/// Connects to the master at `path` by `deadline`: a master whose queue of
/// connections is full does not hold the tunnel longer.
fn connect(path: &Path, deadline: Instant) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: an all-zero sockaddr_un is valid; family and path are set below.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(refused("its socket's path is too long"));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket, owned by nothing else.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: fcntl on our socket with integer arguments.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    sock.set_nonblocking(true)?;
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    loop {
        // SAFETY: a valid address of `len` bytes and our socket.
        let rc = unsafe { libc::connect(fd, (&raw const addr).cast(), len) };
        if rc == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            // A full queue: again a while later, until the deadline.
            Some(libc::EAGAIN) if Instant::now() < deadline => {
                if interrupted() {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Some(libc::EAGAIN) => return Err(timed_out()),
            _ => return Err(e),
        }
    }
    sock.set_nonblocking(false)?;
    Ok(sock)
}

/// Refuses a master that is neither this user's nor root's: it would get
/// the session's streams.
fn ours(sock: &UnixStream) -> io::Result<()> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    match crate::tunnel::peer::uid(sock) {
        Some(uid) if uid == me || uid == 0 => Ok(()),
        Some(uid) => Err(refused(&format!(
            "its socket belongs to uid {uid}, not to this user"
        ))),
        None => Err(io::Error::last_os_error()),
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the ssh control master did not answer in time",
    )
}

/// A session on a master: it ends when the master closes the socket (after
/// the session's streams are closed and its exit status sent); closing the
/// socket ends the session, as killing `ssh` would.
struct Session {
    sock: UnixStream,
    /// The master's session id, which its exit message names.
    id: u32,
    /// Bytes read and not yet a whole message.
    inbox: Vec<u8>,
    /// The remote command's exit status, once the master sent it.
    exit: Option<u32>,
    ended: Option<ExitStatus>,
}

impl Session {
    /// Takes the whole messages out of `inbox`.
    fn read_messages(&mut self) -> io::Result<()> {
        while let Some(body) = take_message(&mut self.inbox)? {
            if u32_at(&body, 0) == Some(S_EXIT_MESSAGE) && u32_at(&body, 4) == Some(self.id) {
                self.exit = u32_at(&body, 8);
            }
        }
        Ok(())
    }

    fn end(&mut self, status: ExitStatus) -> ExitStatus {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        *self.ended.get_or_insert(status)
    }
}

impl Transport for Session {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.ended {
            return Ok(Some(status));
        }
        let mut buf = [0u8; 512];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    // As `ssh` does: the status the master sent, or 255.
                    let code = self.exit.map_or(NO_STATUS, |c| (c & 0xff) as i32);
                    return Ok(Some(self.end(ExitStatus::from_raw(code << 8))));
                }
                Ok(n) => {
                    self.inbox.extend_from_slice(&buf[..n]);
                    if let Err(e) = self.read_messages() {
                        self.end(ExitStatus::from_raw(NO_STATUS << 8));
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end(ExitStatus::from_raw(NO_STATUS << 8));
                    return Err(e);
                }
            }
        }
    }

    fn kill(&mut self) {
        // The master closes the session's channel when its client goes.
        self.end(ExitStatus::from_raw(libc::SIGKILL));
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::other(format!("the ssh control master: {why}"))
}

/// One message: its length, `kind` and what `body` puts.
fn message(kind: u32, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut m = vec![0; 4];
    put_u32(&mut m, kind);
    body(&mut m);
    let len = (m.len() - 4) as u32;
    m[..4].copy_from_slice(&len.to_be_bytes());
    m
}

fn put_u32(m: &mut Vec<u8>, v: u32) {
    m.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(m: &mut Vec<u8>, b: &[u8]) {
    put_u32(m, b.len() as u32);
    m.extend_from_slice(b);
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn string_at(b: &[u8], at: usize) -> Option<String> {
    let len = u32_at(b, at)? as usize;
    let text = b.get(at + 4..at + 4 + len)?;
    Some(crate::output::printable(&String::from_utf8_lossy(text)).into_owned())
}

/// The first whole message of `inbox`, taken out; `None` until one is whole.
fn take_message(inbox: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = u32_at(inbox, 0) else {
        return Ok(None);
    };
    let len = len as usize;
    if len > MAX_MESSAGE {
        return Err(refused("it sent a message too long for the mux protocol"));
    }
    if inbox.len() < 4 + len {
        return Ok(None);
    }
    let body = inbox[4..4 + len].to_vec();
    inbox.drain(..4 + len);
    Ok(Some(body))
}

/// Reads until `inbox` holds a whole message, by `deadline`; looks for
/// Ctrl-C every [`INTERRUPT_POLL`].
fn read_message(
    sock: &mut UnixStream,
    inbox: &mut Vec<u8>,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 512];
    loop {
        if let Some(body) = take_message(inbox)? {
            return Ok(body);
        }
        if interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        set_timeouts(sock, deadline)?;
        match sock.read(&mut buf) {
            Ok(0) => return Err(refused("it closed the connection")),
            Ok(n) => inbox.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads and writes on `sock` wait at most until `deadline`, in slices of
/// [`INTERRUPT_POLL`].
fn set_timeouts(sock: &UnixStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    let left = left.clamp(std::time::Duration::from_millis(1), INTERRUPT_POLL);
    sock.set_read_timeout(Some(left))?;
    sock.set_write_timeout(Some(left))
}

/// Writes all of `bytes` by `deadline`; a master gone away is an error,
/// not a SIGPIPE.
fn send(sock: &UnixStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: a valid socket and a buffer of `bytes.len()` bytes.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                NO_SIGPIPE,
            )
        };
        if n > 0 {
            bytes = &bytes[n as usize..];
            continue;
        }
        waited(io::Error::last_os_error(), deadline)?;
    }
    Ok(())
}

/// Whether a write that failed with `e` may be tried again: interrupted by
/// a signal, or a full socket (each write waits one [`INTERRUPT_POLL`]
/// slice) before `deadline` and without Ctrl-C.
fn waited(e: io::Error, deadline: Instant) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::Interrupted => Ok(()),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            if interrupted() {
                Err(io::ErrorKind::Interrupted.into())
            } else if Instant::now() >= deadline {
                Err(timed_out())
            } else {
                Ok(())
            }
        }
        _ => Err(e),
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const NO_SIGPIPE: libc::c_int = 0;

/// Passes `fd` to the master: one byte carrying it (`SCM_RIGHTS`), as the
/// master receives each descriptor.
fn send_fd(sock: &UnixStream, fd: RawFd, deadline: Instant) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one control message with one descriptor, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    debug_assert!(space <= std::mem::size_of_val(&control));
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes we own, so the first
    // header and its data fit.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `msg` and what it points at live through the call.
        match unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, NO_SIGPIPE) } {
            1 => return Ok(()),
            n if n < 0 => waited(io::Error::last_os_error(), deadline)?,
            _ => return Err(refused("a descriptor could not be passed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_by_length() {
        let m = message(MSG_HELLO, |m| put_u32(m, VERSION));
        assert_eq!(m, [0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 4]);
        let mut inbox = m[..6].to_vec();
        assert_eq!(take_message(&mut inbox).unwrap(), None);
        inbox.extend_from_slice(&m[6..]);
        inbox.extend_from_slice(&[0, 0]);
        let body = take_message(&mut inbox).unwrap().unwrap();
        assert_eq!((u32_at(&body, 0), u32_at(&body, 4)), (Some(1), Some(4)));
        assert_eq!(inbox, [0, 0]);
        let mut long = vec![0xff, 0xff, 0xff, 0xff];
        assert!(take_message(&mut long).is_err());
    }

    #[test]
    fn a_refusal_quotes_the_master_printably() {
        let reply = message(S_FAILURE, |m| {
            put_u32(m, REQUEST);
            put_bytes(m, b"Session open refused by peer\x1b[2J");
        });
        let body = take_message(&mut reply.clone()).unwrap().unwrap();
        let why = string_at(&body, 8).unwrap();
        assert!(why.starts_with("Session open refused by peer"), "{why}");
        assert!(!why.contains('\x1b'), "{why}");
    }
}
