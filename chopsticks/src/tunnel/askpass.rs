//! The controller's end of ssh's password prompt: a socket in a private
//! directory, and a script there that ssh runs as `SSH_ASKPASS`, which
//! starts this program again to ask over the socket (see the agent crate's
//! `askpass.rs`). It lives while one ssh connects.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::contract::{AGENT_ENTRY_ARGS, ENV_ASKPASS};
use crate::passwords::{PasswordFor, Source};

/// One connection's askpass: dropping it stops answering and removes the
/// directory.
pub(crate) struct Askpass {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Askpass {
    /// Starts answering ssh's prompts for `host` from `source`, as the
    /// program `exe`.
    pub(crate) fn start(host: &str, source: Source, exe: &Path) -> std::io::Result<Askpass> {
        let dir = private_dir()?;
        let socket = dir.join("s");
        let listener = UnixListener::bind(&socket)?;
        listener.set_nonblocking(true)?;
        let script = dir.join("askpass");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&script)?;
        // The answer goes to ssh on fd 3; what the program prints on its
        // stdout (a test harness's chatter) goes to stderr.
        writeln!(
            file,
            "#!/bin/sh\nexec 3>&1 >&2\nCHOPSTICKS_ASKPASS_PROMPT=\"$1\" exec {} {}",
            shell_quote(&exe.to_string_lossy()),
            AGENT_ENTRY_ARGS.join(" ")
        )?;
        drop(file);
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, asked, host) = (Arc::clone(&stop), Arc::clone(&asked), host.to_owned());
            std::thread::Builder::new()
                .name(format!("chopsticks-askpass-{host}"))
                .spawn(move || serve(&listener, &host, &source, &stop, &asked))?
        };
        Ok(Askpass {
            dir,
            stop,
            asked,
            thread: Some(thread),
        })
    }

    /// What ssh's environment needs to ask through this.
    pub(crate) fn env(&self) -> [(OsString, OsString); 3] {
        [
            ("SSH_ASKPASS".into(), self.dir.join("askpass").into()),
            ("SSH_ASKPASS_REQUIRE".into(), "force".into()),
            (ENV_ASKPASS.into(), self.dir.join("s").into()),
        ]
    }

    /// How many prompts were answered so far.
    pub(crate) fn counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.asked)
    }
}

impl Drop for Askpass {
    fn drop(&mut self) {
        // The thread ends at its next look at the flag; it is not waited
        // for, as it may be waiting for a person at a password prompt.
        self.stop.store(true, Ordering::SeqCst);
        drop(self.thread.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Answers prompts until stopped; each one from a process of this user.
fn serve(
    listener: &UnixListener,
    host: &str,
    source: &Source,
    stop: &AtomicBool,
    asked: &AtomicUsize,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if answer(stream, host, source) {
                    asked.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads one prompt and writes the source's answer; whether it answered.
fn answer(mut stream: UnixStream, host: &str, source: &Source) -> bool {
    if !same_user(&stream) {
        return false;
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut prompt = Vec::new();
    if (&mut stream).take(4096).read_to_end(&mut prompt).is_err() {
        return false;
    }
    let prompt = String::from_utf8_lossy(&prompt);
    // Only the target's ssh gets the password, not a jump host's (its
    // login is another), and only for a password prompt: not a question
    // about an unknown host key, nor a key's passphrase.
    let Some(("target", prompt)) = prompt.split_once('\n') else {
        return false;
    };
    if !prompt.to_ascii_lowercase().contains("password") {
        return false;
    }
    let Some(password) = source.ask(host, PasswordFor::Login, prompt.trim_end()) else {
        return false;
    };
    let mut reply = password.into_bytes();
    reply.push(b'\n');
    let written = stream.write_all(&reply).is_ok();
    reply.fill(0);
    written
}

/// Whether the peer runs as this process's user.
fn same_user(stream: &UnixStream) -> bool {
    // SAFETY: geteuid cannot fail.
    super::peer::uid(stream) == Some(unsafe { libc::geteuid() })
}

/// A new directory only this user can enter, under `$XDG_RUNTIME_DIR` or
/// the temporary directory.
fn private_dir() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    for attempt in 0..16u32 {
        let dir = base.join(format!(
            "chopsticks-askpass-{}-{}",
            std::process::id(),
            super::nonce().get(..8).unwrap_or("0").to_owned() + &attempt.to_string()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("cannot make a private directory"))
}

/// `text` in single quotes for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
