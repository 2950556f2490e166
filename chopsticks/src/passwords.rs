//! Password sources: where a tunnel gets the passwords ssh and sudo ask
//! for, when keys and `NOPASSWD` are not to be had.
//!
//! A source is a function of a [`PasswordPrompt`] that returns the password,
//! or `None` to refuse; give it with
//! [`TunnelBuilder::password_source`](crate::TunnelBuilder::password_source).
//! The password goes to ssh through `SSH_ASKPASS` (this program, started
//! again in a mode of its own, fetches it over a private socket) and to
//! sudo once over the tunnel's own channel (`sudo -S`): never in an
//! argument vector, an environment, a log record or an error. Without a
//! source, ssh runs with `BatchMode=yes` and sudo with `-n`, and nothing
//! ever prompts.
//!
//! ```no_run
//! use chopsticks::{passwords, Tunnel};
//! # fn main() -> chopsticks::Result<()> {
//! // Asked once on this terminal, used for every host and for sudo.
//! let t = Tunnel::builder("web1")
//!     .sudo("root")
//!     .password_source(passwords::terminal())
//!     .connect()?;
//! // Or from a variable of your choosing (a secret store's helper set it).
//! let t = Tunnel::builder("web2")
//!     .password_source(passwords::from_env("WEB_PASSWORD"))
//!     .connect()?;
//! # Ok(()) }
//! ```

use chopsticks_agent::sync::Unpoisoned;
use std::fmt;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

/// What a password is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PasswordFor {
    /// ssh's login on the host.
    Login,
    /// sudo on the host (the login user's password, as sudo asks it).
    Sudo,
}

/// One question to a password source.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PasswordPrompt<'a> {
    /// The host, as the tunnel names it.
    pub host: &'a str,
    /// What the password is for.
    pub purpose: PasswordFor,
    /// The text ssh shows (`user@host's password: `), or sudo's.
    pub prompt: &'a str,
}

/// What a password source is: a function of the prompt.
pub(crate) type SourceFn = dyn Fn(&PasswordPrompt<'_>) -> Option<String> + Send + Sync;

/// A password source, as a tunnel builder keeps it.
#[derive(Clone)]
pub(crate) struct Source(pub(crate) Arc<SourceFn>);

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordSource")
    }
}

impl Source {
    pub(crate) fn ask(&self, host: &str, purpose: PasswordFor, prompt: &str) -> Option<String> {
        (self.0)(&PasswordPrompt {
            host,
            purpose,
            prompt,
        })
    }
}

/// The value of the environment variable `name`, for every host and
/// purpose (`None` when it is not set).
pub fn from_env(name: &str) -> impl Fn(&PasswordPrompt<'_>) -> Option<String> + Send + Sync {
    let name = name.to_owned();
    move |_| std::env::var(&name).ok()
}

/// Asks on the controller's terminal (`/dev/tty`, without echo) the first
/// time a password is needed, and gives the same answer for every host and
/// purpose after that, as `ansible -k` does. `None` when there is no
/// terminal or nothing was typed.
pub fn terminal() -> impl Fn(&PasswordPrompt<'_>) -> Option<String> + Send + Sync {
    let known: Mutex<Option<String>> = Mutex::new(None);
    move |prompt| {
        let mut known = known.lock().unpoisoned();
        if known.is_none() {
            *known = read_from_terminal(&format!("password for {}: ", prompt.host));
        }
        known.clone()
    }
}

/// Reads one line from `/dev/tty` with echo off.
fn read_from_terminal(prompt: &str) -> Option<String> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data, filled by tcgetattr on an open fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open for the call's duration; `saved` is valid.
    let have_termios = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_termios {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let _ = (&tty).write_all(prompt.as_bytes());
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_termios {
        // SAFETY: as above; restores what was there.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.ok()?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    (!line.is_empty()).then_some(line)
}
