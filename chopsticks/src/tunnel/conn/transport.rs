//! What a tunnel runs over: three byte streams to an agent and the thing
//! that carries them (a local process: `ssh`, `docker exec`, the agent
//! itself). A kind of tunnel makes a [`Link`]; `Conn` never sees how.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What carries a tunnel's streams, and how to stop it.
pub(crate) trait Transport: Send {
    /// Its exit status, once it ended; `None` while it runs.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>>;
    /// Stops it now and reaps it: nothing is left behind.
    fn kill(&mut self);
}

impl Transport for Child {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Child::try_wait(self)
    }

    fn kill(&mut self) {
        let _ = Child::kill(self);
        let _ = self.wait();
    }
}

/// The three streams of one agent and what carries them.
pub(crate) struct Link {
    /// Requests go here (the agent's stdin).
    pub to_agent: File,
    /// Frames come from here (the agent's stdout).
    pub from_agent: File,
    /// Text for people (the agent's stderr).
    pub stderr: File,
    pub transport: Box<dyn Transport>,
}

impl Link {
    /// Starts `command` with its three standard streams piped to us.
    /// It runs in a process group of its own: a terminal's Ctrl-C reaches
    /// this program only, which then cancels the calls over the still open
    /// connection (`interrupt`), rather than killing `ssh` under them.
    pub(crate) fn spawn(mut command: Command) -> io::Result<Link> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn()?;
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => Ok(Link {
                to_agent: File::from(OwnedFd::from(i)),
                from_agent: File::from(OwnedFd::from(o)),
                stderr: File::from(OwnedFd::from(e)),
                transport: Box::new(child),
            }),
            _ => {
                Transport::kill(&mut child);
                Err(io::Error::other("a piped standard stream is missing"))
            }
        }
    }
}

/// Waits at most `bound` for the transport to exit.
pub(crate) fn wait_exit(transport: &mut dyn Transport, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    let mut pause = Duration::from_micros(200);
    loop {
        match transport.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => return None,
        }
    }
}

/// Makes reads and writes of `file` return `WouldBlock` instead of waiting.
pub(crate) fn set_nonblocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid fd we own, with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A close-on-exec pipe as `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(File, File)> {
    let (read, write) = io::pipe()?;
    Ok((
        File::from(OwnedFd::from(read)),
        File::from(OwnedFd::from(write)),
    ))
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`. The I/O
/// thread of a tunnel polls the read end; writing a byte wakes it.
pub(crate) fn wake_pipe() -> io::Result<(File, File)> {
    let (read, write) = pipe()?;
    set_nonblocking(&read)?;
    set_nonblocking(&write)?;
    Ok((read, write))
}
