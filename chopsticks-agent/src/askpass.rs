//! Answering ssh's password prompt for a controller that has a password
//! source. ssh runs its `SSH_ASKPASS` program, a script the controller
//! wrote that starts this program again with [`ENV_ASKPASS`] set to the
//! controller's socket and ssh's prompt in [`ENV_ASKPASS_PROMPT`]. This copy
//! sends the prompt over the socket, writes the answer for ssh on fd 3 (the
//! script points fd 3 at ssh's pipe and stdout at stderr, where a test
//! harness's chatter cannot be taken for the answer) and exits: the
//! password is in no argument vector and no environment, and only a process
//! of the same user can reach the socket (a private directory; the
//! controller checks the peer's uid).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::contract::{ENV_ASKPASS, ENV_ASKPASS_PROMPT};

/// Longer than any person takes to type a password: the controller bounds
/// the whole connection anyway.
const WAIT: Duration = Duration::from_secs(600);

/// Answers the prompt, then exits: 0 with the password on stdout, 1 when
/// there is none (ssh then fails the login).
pub(crate) fn answer() -> ! {
    let socket = std::env::var_os(ENV_ASKPASS).unwrap_or_default();
    let prompt = std::env::var(ENV_ASKPASS_PROMPT).unwrap_or_default();
    let asked = || -> std::io::Result<Vec<u8>> {
        let mut stream = UnixStream::connect(&socket)?;
        stream.set_read_timeout(Some(WAIT))?;
        // The ssh that asks: the target's, or a jump host's (`ssh -W`,
        // which ProxyJump starts), whose login is not the target's.
        let parent = std::os::unix::process::parent_id();
        let argv = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap_or_default();
        let hop = argv.split(|b| *b == 0).any(|arg| arg == b"-W");
        stream.write_all(if hop { b"hop\n" } else { b"target\n" })?;
        stream.write_all(prompt.replace('\n', " ").as_bytes())?;
        stream.write_all(b"\n")?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut answer)?;
        Ok(answer)
    };
    match asked() {
        Ok(answer) if !answer.is_empty() => {
            use std::os::fd::FromRawFd;
            // SAFETY: the askpass script opened fd 3 for this answer, and
            // nothing else in this process uses it.
            let mut out = unsafe { std::fs::File::from_raw_fd(3) };
            let written = out.write_all(&answer);
            std::process::exit(i32::from(written.is_err()))
        }
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("chopsticks askpass: cannot ask the controller: {e}");
            std::process::exit(1)
        }
    }
}
