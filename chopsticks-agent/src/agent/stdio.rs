//! Agent stdio hygiene: the protocol moves to fresh close-on-exec fds, fd 0
//! reads `/dev/null` and fd 1 goes to stderr. After this, `println!`, a raw
//! `write(1, ..)` or a child process cannot corrupt the protocol.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// The protocol's two ends, on fds no child process inherits.
pub(super) struct Protocol {
    pub input: File,
    pub output: File,
}

pub(super) fn take_protocol_fds() -> io::Result<Protocol> {
    // Anything already buffered for stdout must not land in the protocol later.
    let _ = io::stdout().flush();
    let input = dup_cloexec(0)?;
    let output = dup_cloexec(1)?;
    crate::flow::widen_pipe(&input);
    crate::flow::widen_pipe(&output);
    let null = File::options().read(true).write(true).open("/dev/null")?;
    dup2(null.as_raw_fd(), 0)?;
    // stdout joins stderr, which the controller forwards line by line; with no
    // stderr at all it goes to /dev/null.
    if dup2(2, 1).is_err() {
        dup2(null.as_raw_fd(), 1)?;
    }
    Ok(Protocol { input, output })
}

/// A close-on-exec duplicate of `fd`, numbered 3 or higher (std's
/// `try_clone_to_owned` is `F_DUPFD_CLOEXEC` from 3).
fn dup_cloexec(fd: RawFd) -> io::Result<File> {
    // SAFETY: fds 0 and 1 stay open for the whole process; the borrow ends
    // before this function returns.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fd.try_clone_to_owned().map(File::from)
}

fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    loop {
        // SAFETY: dup2 on fd numbers has no memory-safety preconditions; `to`
        // is 0 or 1, owned by the standard streams.
        if unsafe { libc::dup2(from, to) } >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
