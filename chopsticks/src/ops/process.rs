//! Running a program for an operation: its output captured within a bound,
//! its run within an optional time limit, and stopped when the call is
//! cancelled (either stops its whole process group), and no wait on a
//! background child that keeps its pipes open.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use super::{CommandOutput, OpError};

/// How much of a program's stdout, and of its stderr, an [`CommandOutput`] keeps:
/// the first and the last half of this; what lies between is counted and
/// replaced by a line that says how much it was.
pub const MAX_OUTPUT: usize = 1 << 20;

/// How long output is still read after the program exited: a background
/// child it started may hold its pipes open for good.
const GRACE: Duration = Duration::from_millis(500);

/// A stream's bytes, within [`MAX_OUTPUT`].
#[derive(Default)]
struct Capped {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl Capped {
    fn push(&mut self, mut bytes: &[u8]) {
        let half = MAX_OUTPUT / 2;
        if self.head.len() < half {
            let take = (half - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.tail.extend(bytes);
        if self.tail.len() > half {
            let over = self.tail.len() - half;
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    fn text(mut self) -> String {
        if self.dropped > 0 {
            let note = format!("\n[... {} bytes not kept ...]\n", self.dropped);
            self.head.extend_from_slice(note.as_bytes());
        }
        self.head.extend(self.tail);
        String::from_utf8_lossy(&self.head).into_owned()
    }
}

/// What a program was given to run: how it is named in errors, and its
/// time limit.
pub(super) struct Program<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a PathBuf>,
    /// How errors name it (`ops::command` hides a secret's arguments).
    pub shown: &'a str,
    /// Killed when it runs longer.
    pub timeout: Option<Duration>,
}

/// Where a program's stdout goes: kept within [`MAX_OUTPUT`], or handed
/// piece by piece to a sink that may stop the run with an error.
type Sink<'s> = &'s mut dyn FnMut(&[u8]) -> Result<(), OpError>;

impl Program<'_> {
    /// Runs the program to its end (or its time limit) and collects what
    /// it printed.
    ///
    /// # Errors
    /// When it cannot be started, or runs past its time limit (it is
    /// killed then).
    pub fn output(&self, op: &str) -> Result<CommandOutput, OpError> {
        self.output_with(op, None)
    }

    /// As [`output`](Self::output), with `stdin` (else nothing) as the
    /// program's input.
    ///
    /// # Errors
    /// As `output`.
    pub fn output_with(&self, op: &str, stdin: Option<&[u8]>) -> Result<CommandOutput, OpError> {
        let mut stdout = Capped::default();
        let (status, stderr) = self.run(op, stdin, &mut |bytes| {
            stdout.push(bytes);
            Ok(())
        })?;
        Ok(CommandOutput {
            status,
            stdout: stdout.text(),
            stderr,
        })
    }

    /// Runs the program with `stdin` (else nothing) as its input, handing
    /// its stdout to `sink` as it comes; returns its exit status and
    /// stderr (within [`MAX_OUTPUT`]). The time limit, cancellation and
    /// the grace period after it exits apply as in [`output`](Self::output).
    ///
    /// # Errors
    /// As `output`; and the sink's own error, as it is, when it refuses
    /// what came (too much, a failed write): the program is killed then,
    /// with what it started.
    pub fn stream(
        &self,
        op: &str,
        stdin: Option<&[u8]>,
        sink: Sink<'_>,
    ) -> Result<(i32, String), OpError> {
        self.run(op, stdin, sink)
    }

    fn run(
        &self,
        op: &str,
        stdin: Option<&[u8]>,
        sink: Sink<'_>,
    ) -> Result<(i32, String), OpError> {
        let fail = |message: String| OpError::new(op, self.shown, message);
        let Some((program, args)) = self.argv.split_first() else {
            return Err(fail("an empty command: give the program to run".into()));
        };
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(match stdin {
                Some(_) => Stdio::piped(),
                None => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = self.cwd {
            command.current_dir(dir);
        }
        // A group of its own: a time limit stops what it started too
        // (`sh -c`'s children, apt's dpkg).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| {
            fail(format!(
                "cannot start `{program}`: {}",
                crate::files::describe(&e)
            ))
        })?;
        // Written as the program reads it, within its time limit: one that
        // does not read cannot hold the run up past it.
        let input = match (stdin, child.stdin.take()) {
            (Some(bytes), Some(pipe)) => match Input::new(pipe, bytes) {
                Ok(input) => Some(input),
                Err(e) => {
                    // SAFETY: as `stop` below: its group, not reaped yet.
                    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                    let _ = child.wait();
                    return Err(fail(format!("cannot give it its input: {e}")));
                }
            },
            _ => None,
        };
        let collected = collect(&mut child, self.timeout, input, sink);
        let stop = |child: &mut Child| {
            // SAFETY: signals the process group this child leads; it is
            // not reaped yet, so its id is not reused.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        };
        let (stderr, status) = match collected {
            Ok(done) => done,
            Err(e) => {
                stop(&mut child);
                return Err(fail(format!("cannot read its output: {e}")));
            }
        };
        let status = match status {
            Ended::Exited(status) => status,
            Ended::Refused(e) => {
                stop(&mut child);
                return Err(e);
            }
            stopped => {
                stop(&mut child);
                let limit = self.timeout.unwrap_or_default();
                return Err(fail(match stopped {
                    Ended::Cancelled => "was killed, with what it started: the call was \
                        cancelled (its caller stopped waiting, or was interrupted)"
                        .into(),
                    _ => format!(
                        "did not finish within {:.1} s and was killed: raise its timeout, or \
                         make it finish sooner",
                        limit.as_secs_f64()
                    ),
                }));
            }
        };
        Ok((status.code().unwrap_or(-1), stderr.text()))
    }
}

/// The program's stdin, written without blocking as the pipe takes it.
struct Input<'b> {
    pipe: ChildStdin,
    rest: &'b [u8],
}

impl<'b> Input<'b> {
    /// `bytes` to write to `pipe`, which is made non-blocking.
    fn new(pipe: ChildStdin, bytes: &'b [u8]) -> io::Result<Input<'b>> {
        let fd = pipe.as_raw_fd();
        // SAFETY: `fd` is the open pipe `pipe` owns.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
        };
        match ok {
            true => Ok(Input { pipe, rest: bytes }),
            false => Err(io::Error::last_os_error()),
        }
    }

    /// Writes what the pipe takes now; `false` when it is done with: all
    /// written, or the program closed its end (its status says why).
    fn write_some(&mut self) -> bool {
        while !self.rest.is_empty() {
            match io::Write::write(&mut self.pipe, self.rest) {
                Ok(0) => return false,
                Ok(n) => self.rest = &self.rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

/// How a program's run ended.
enum Ended {
    Exited(std::process::ExitStatus),
    /// It ran past its time limit.
    TimedOut,
    /// The call running it was cancelled (`agent::cancelled`).
    Cancelled,
    /// The sink of its stdout refused what came.
    Refused(OpError),
}

/// Writes `input` (if any) to the child's stdin as it takes it, closing it
/// once all is written or the child exited; reads the child's stdout (into
/// `sink`) and stderr until both end (or
/// [`GRACE`] after it exited), and how it ended: its exit status, or that
/// it ran past `timeout`, or that the call was cancelled (polled as its
/// output is), or that the sink refused what came.
fn collect(
    child: &mut Child,
    timeout: Option<Duration>,
    mut input: Option<Input<'_>>,
    sink: Sink<'_>,
) -> io::Result<(Capped, Ended)> {
    let mut out: Option<ChildStdout> = child.stdout.take();
    let mut err: Option<ChildStderr> = child.stderr.take();
    let mut stderr = Capped::default();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if exited.is_none() {
            if let Some(status) = child.try_wait()? {
                exited = Some((status, Instant::now()));
            }
        }
        if exited.is_some() {
            input = None;
        }
        let open = out.is_some() || err.is_some() || input.is_some();
        match exited {
            Some((status, _)) if !open => return Ok((stderr, Ended::Exited(status))),
            Some((status, at)) if at.elapsed() >= GRACE => {
                return Ok((stderr, Ended::Exited(status)))
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok((stderr, Ended::TimedOut))
            }
            None if crate::agent::cancelled() => return Ok((stderr, Ended::Cancelled)),
            _ => {}
        }
        if !open {
            // Both pipes closed, the program still runs: wait for it.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let stdin_fd = input.as_ref().map(|i| i.pipe.as_raw_fd());
        let mut fds: Vec<libc::pollfd> = [
            out.as_ref().map(AsRawFd::as_raw_fd),
            err.as_ref().map(AsRawFd::as_raw_fd),
        ]
        .into_iter()
        .flatten()
        .map(|fd| (fd, libc::POLLIN))
        .chain(stdin_fd.map(|fd| (fd, libc::POLLOUT)))
        .map(|(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
        // Wake at least every 50 ms to see whether it exited, ran out of
        // time or was cancelled.
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for pfd in fds.iter().filter(|p| p.revents != 0) {
            if Some(pfd.fd) == stdin_fd {
                if !input.as_mut().is_some_and(Input::write_some) {
                    input = None;
                }
                continue;
            }
            let is_out = out.as_ref().map(AsRawFd::as_raw_fd) == Some(pfd.fd);
            let n = match is_out {
                true => read_some(&mut out, &mut buf)?,
                false => read_some(&mut err, &mut buf)?,
            };
            match is_out {
                true if n > 0 => {
                    if let Err(e) = sink(&buf[..n]) {
                        return Ok((stderr, Ended::Refused(e)));
                    }
                }
                true => {}
                false => stderr.push(&buf[..n]),
            }
        }
    }
}

/// One read from a ready pipe; at its end the pipe is dropped (closed).
fn read_some<R: Read>(pipe: &mut Option<R>, buf: &mut [u8]) -> io::Result<usize> {
    let Some(reader) = pipe.as_mut() else {
        return Ok(0);
    };
    match reader.read(buf) {
        Ok(0) => {
            *pipe = None;
            Ok(0)
        }
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, timeout: Option<Duration>) -> Result<CommandOutput, OpError> {
        let argv = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        Program {
            argv: &argv,
            env: &[],
            cwd: None,
            shown: "`test`",
            timeout,
        }
        .output("ops::command")
    }

    #[test]
    fn output_is_kept_within_its_bound_head_and_tail() {
        let out = run(
            "echo first; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo last >&2; echo end",
            None,
        )
        .unwrap();
        assert_eq!(out.status, 0);
        assert!(
            out.stdout.starts_with("first\nxxx"),
            "{}",
            &out.stdout[..20]
        );
        assert!(out.stdout.ends_with("xxx\nend\n"));
        assert!(out.stdout.contains(" bytes not kept ...]"));
        assert!(out.stdout.len() < MAX_OUTPUT + 100, "{}", out.stdout.len());
        assert_eq!(out.stderr, "last\n");
    }

    #[test]
    fn a_time_limit_kills_and_a_background_child_does_not_hold_the_run() {
        let started = Instant::now();
        let err = run("sleep 30", Some(Duration::from_millis(300))).unwrap_err();
        assert!(err.message.contains("did not finish within 0.3 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The child's child keeps stdout open for 5 s; the run ends sooner.
        let started = Instant::now();
        let out = run("sleep 5 & echo started", None).unwrap();
        assert_eq!((out.status, out.stdout.as_str()), (0, "started\n"));
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn stdin_is_written_within_the_time_limit() {
        let argv = |script: &str| ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let program = |argv, timeout| Program {
            argv,
            env: &[],
            cwd: None,
            shown: "`test`",
            timeout: Some(Duration::from_millis(timeout)),
        };
        let big = vec![b'x'; 1 << 20];
        // More than a pipe holds, to a program that never reads it.
        let started = Instant::now();
        let sleeper = argv("sleep 20");
        let e = program(&sleeper, 500)
            .output_with("ops::command", Some(&big))
            .unwrap_err();
        assert!(e.message.contains("did not finish within 0.5 s"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // A program that reads it gets all of it, and its end.
        let counter = argv("wc -c");
        let out = program(&counter, 20_000)
            .output_with("ops::command", Some(&big))
            .unwrap();
        assert_eq!(out.stdout.trim(), "1048576");
        // One that exits without reading: its status, no error.
        let quitter = argv("exit 3");
        let out = program(&quitter, 20_000)
            .output_with("ops::command", Some(&big))
            .unwrap();
        assert_eq!(out.status, 3);
    }

    #[test]
    fn a_stream_takes_stdin_and_its_sink_can_stop_the_run() {
        let argv = [
            "sh".to_owned(),
            "-c".to_owned(),
            "cat; echo done >&2".to_owned(),
        ];
        let program = Program {
            argv: &argv,
            env: &[],
            cwd: None,
            shown: "`test`",
            timeout: Some(Duration::from_secs(10)),
        };
        let mut got = Vec::new();
        let (status, stderr) = program
            .stream("ops::download", Some(b"hello"), &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (status, stderr.as_str(), got.as_slice()),
            (0, "done\n", &b"hello"[..])
        );
        // A sink that refuses stops an endless writer at once.
        let argv = ["sh".to_owned(), "-c".to_owned(), "yes".to_owned()];
        let program = Program {
            argv: &argv,
            ..program
        };
        let started = Instant::now();
        let mut seen = 0;
        let e = program
            .stream("ops::download", None, &mut |b| {
                seen += b.len();
                match seen > 100_000 {
                    true => Err(OpError::new("ops::download", "/x", "too large")),
                    false => Ok(()),
                }
            })
            .unwrap_err();
        assert_eq!(e.message, "too large");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The time limit applies to a stream too.
        let argv = ["sleep".to_owned(), "30".to_owned()];
        let program = Program {
            argv: &argv,
            timeout: Some(Duration::from_millis(300)),
            ..program
        };
        let e = program
            .stream("ops::download", None, &mut |_| Ok(()))
            .unwrap_err();
        assert!(e.message.contains("did not finish within 0.3 s"), "{e}");
    }
}
