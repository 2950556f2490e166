//! Removing a process's temporary files when it dies without doing so
//! itself (killed by `SIGKILL`, the OOM killer, a lost session).
//!
//! Where a file cannot be written unnamed (`O_TMPFILE`: FUSE, overlay
//! filesystems of older kernels, NFS), a transfer's temporary file has a
//! name from the start; the files of a tree get theirs when complete and
//! keep it until the whole tree is there. A killed process would leave
//! them behind. So the first time it keeps one, a process starts a
//! *janitor* (only a program with an agent entry point can): a copy of its own
//! program (`/proc/self/exe`, with [`ENV_JANITOR`] set) in a session of its
//! own, which reads over a pipe the paths to [`watch`] and to [`forget`].
//! When the pipe closes, which the kernel does however the process died,
//! the janitor removes what is still watched, and exits.
//!
//! Records on the pipe: one byte (`+` watch, `-` forget), a 4-byte
//! little-endian length, the path's bytes.

use crate::sync::Unpoisoned;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::contract::{AGENT_ENTRY_ARGS, AGENT_ENV, ENV_JANITOR};

struct Janitor {
    to: ChildStdin,
    /// Kept so that the child is not waited for; it outlives this process.
    _child: Child,
}

/// `None` before the first watch; `Some(None)` when it could not start.
static JANITOR: Mutex<Option<Option<Janitor>>> = Mutex::new(None);

fn start() -> io::Result<Janitor> {
    // A copy of a program that cannot serve as an agent would run its main.
    if !crate::has_entry_point() {
        return Err(io::Error::other(
            "this program has no agent entry point (#[chopsticks::main])",
        ));
    }
    let exe = Path::new("/proc/self/exe");
    let exe = if exe.exists() {
        exe.to_owned()
    } else {
        std::env::current_exe()?
    };
    let mut command = Command::new(exe);
    // A libtest binary needs its agent test selected; `main` ignores them.
    command
        .args(AGENT_ENTRY_ARGS)
        .env(ENV_JANITOR, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in AGENT_ENV {
        command.env_remove(var);
    }
    let mut child = command.spawn()?;
    let to = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("the janitor has no input"))?;
    Ok(Janitor { to, _child: child })
}

fn send(op: u8, path: &Path) -> io::Result<()> {
    let mut janitor = JANITOR.lock().unpoisoned();
    if janitor.is_none() {
        *janitor = Some(start().ok());
    }
    let Some(Some(j)) = janitor.as_mut() else {
        return Err(io::Error::other("no janitor could be started"));
    };
    let bytes = path.as_os_str().as_bytes();
    let mut record = Vec::with_capacity(5 + bytes.len());
    record.push(op);
    record.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    record.extend_from_slice(bytes);
    j.to.write_all(&record)
}

/// Removes `path` (an absolute path) if this process dies before it
/// [`forget`]s it.
///
/// # Errors
/// When no janitor can be started (the file is then left if the process
/// is killed).
pub fn watch(path: &Path) -> io::Result<()> {
    send(b'+', path)
}

/// Stops watching `path` (it was renamed or removed).
pub fn forget(path: &Path) {
    let started = matches!(&*JANITOR.lock().unpoisoned(), Some(Some(_)));
    if started {
        let _ = send(b'-', path);
    }
}

/// The janitor itself: collects the watched paths until its input ends,
/// then removes them and exits.
pub(crate) fn serve() -> ! {
    // Out of the dying process's session and process group, and deaf to
    // the signals that end them.
    // SAFETY: setsid and signal have no memory-safety preconditions.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let mut watched: HashSet<Vec<u8>> = HashSet::new();
    let mut input = io::stdin().lock();
    let mut head = [0u8; 5];
    while input.read_exact(&mut head).is_ok() {
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut path = vec![0u8; len];
        if input.read_exact(&mut path).is_err() {
            break;
        }
        match head[0] {
            b'+' => {
                watched.insert(path);
            }
            _ => {
                watched.remove(&path);
            }
        }
    }
    for path in watched {
        let _ = std::fs::remove_file(OsStr::from_bytes(&path));
    }
    std::process::exit(0)
}
