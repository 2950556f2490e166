//! Fetching with `curl` or `wget`: the program writes the content to its
//! stdout, which is streamed into a file here, hashed and counted on the
//! way; the program is killed (with what it started) past the size or the
//! time limit. No shell: the arguments are given as they are.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use sha2::{Digest as _, Sha256};

use super::{shown, Download};
use crate::ops::OpError;

/// What stderr of a failed fetch is kept of, at most: its last bytes.
const MAX_STDERR: usize = 4096;

/// A program that fetches, and how to give it the URL.
#[derive(Clone)]
pub(super) struct Fetcher {
    argv: Vec<String>,
    /// The URL in curl's config syntax on stdin (`-K -`): it stays off the
    /// command line, where other users could read it.
    stdin: Option<String>,
}

/// The URL shows as [`Download::shown_url`] does: it may hold a password
/// or a token.
impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let argv: Vec<String> = self
            .argv
            .iter()
            .map(|a| match a.contains("://") {
                true => shown(a),
                false => a.clone(),
            })
            .collect();
        let stdin = self.stdin.as_ref().map(|_| "url = <the URL>");
        f.debug_struct("Fetcher")
            .field("argv", &argv)
            .field("stdin", &stdin)
            .finish()
    }
}

/// curl's arguments: fail on HTTP errors, follow redirects over HTTP(S)
/// only, within the spec's size and time; the URL comes on stdin.
fn curl(program: String, spec: &Download) -> Fetcher {
    let argv = [
        program.as_str(),
        "--fail",
        "--location",
        "--silent",
        "--show-error",
        "--proto",
        "=http,https",
        "--proto-redir",
        "=http,https",
        "--max-filesize",
        &spec.max_size.to_string(),
        "--max-time",
        &spec.timeout.as_secs().max(1).to_string(),
        "--config",
        "-",
    ];
    Fetcher {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        stdin: Some(format!("url = \"{}\"\n", spec.url)),
    }
}

/// This machine's `curl`, as the controller runs it.
pub(super) fn controller(spec: &Download) -> Fetcher {
    curl("curl".to_owned(), spec)
}

/// The host's `curl`, else its `wget`.
///
/// # Errors
/// When it has neither.
pub(super) fn on_host(spec: &Download) -> Result<Fetcher, OpError> {
    if let Some(curl_path) = crate::ops::tools::tool("curl") {
        return Ok(curl(curl_path.display().to_string(), spec));
    }
    let Some(wget) = crate::ops::tools::tool("wget") else {
        return Err(spec.fail(
            "this host has neither curl nor wget to fetch with: install one of them, or \
             drop .on_host() and run it with Tunnel::download or Group::download (the \
             controller fetches it and sends it)",
        ));
    };
    // Busybox's wget has no time limit of its own: `fetch_into` keeps it.
    let argv = [
        wget.display().to_string().as_str(),
        "-q",
        "-O",
        "-",
        &spec.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Ok(Fetcher { argv, stdin: None })
}

/// Runs `fetcher` and streams what it fetches into `out`; checks the
/// SHA-256 against `want` when given. Returns the SHA-256 (hex) and the
/// size.
///
/// # Errors
/// When the program cannot start, fails (an HTTP error, no connection),
/// sends more than the spec's `max_size`, runs past its `timeout`, or the
/// checksum differs.
pub(super) fn fetch_into(
    spec: &Download,
    fetcher: &Fetcher,
    out: &mut dyn Write,
    want: Option<&str>,
) -> Result<(String, u64), OpError> {
    let url = spec.shown_url();
    let program = fetcher.argv[0].clone();
    let mut command = Command::new(&program);
    command
        .args(&fetcher.argv[1..])
        .stdin(match fetcher.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A group of its own: a limit kills what it started too.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|e| {
        spec.fail(format!(
            "cannot start `{program}` to fetch {url}: {} (install curl, or use .on_host())",
            crate::files::describe(&e)
        ))
    })?;
    let pid = child.id() as libc::pid_t;
    let kill = move || {
        // SAFETY: signals the process group this child leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    };
    if let (Some(config), Some(mut stdin)) = (&fetcher.stdin, child.stdin.take()) {
        // A program that exits at once closes it: its status says why.
        let _ = stdin.write_all(config.as_bytes());
    }
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill();
        let _ = child.wait();
        return Err(spec.fail(format!("`{program}` started without its output pipes")));
    };
    let errors = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            kept.extend_from_slice(&buf[..n]);
            let over = kept.len().saturating_sub(MAX_STDERR);
            kept.drain(..over);
        }
        String::from_utf8_lossy(&kept).trim().to_owned()
    });
    let (done, timer) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let timed_out = Arc::clone(&timed_out);
        let limit = spec.timeout;
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = timer.recv_timeout(limit) {
                timed_out.store(true, Ordering::SeqCst);
                kill();
            }
        })
    };
    let copied = copy(spec, &mut stdout, out);
    if copied.is_err() {
        kill();
    }
    drop(stdout);
    let status = child.wait();
    let _ = done.send(());
    let _ = watchdog.join();
    let said = errors.join().unwrap_or_default();
    if timed_out.load(Ordering::SeqCst) {
        return Err(spec.fail(format!(
            "fetching {url} took longer than {} s and was stopped: raise .timeout(..)",
            spec.timeout.as_secs()
        )));
    }
    let (hasher, size) = copied?;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let said = match said.is_empty() {
                true => format!("it exited with {s}"),
                false => said.replace(&spec.url, &url),
            };
            return Err(spec.fail(format!("`{program}` could not fetch {url}: {said}")));
        }
        Err(e) => return Err(spec.fail(format!("waiting for `{program}`: {e}"))),
    }
    let sum = crate::files::hex(&hasher.finalize().into());
    if let Some(want) = want.filter(|w| **w != sum) {
        return Err(spec.fail(format!(
            "the content of {url} has sha256 {sum}, not the {want} given: the file at the URL \
             changed or the checksum is wrong; nothing was replaced"
        )));
    }
    Ok((sum, size))
}

/// Copies `from` into `to`, hashing; fails past `max` bytes.
fn copy(
    spec: &Download,
    from: &mut dyn Read,
    to: &mut dyn Write,
) -> Result<(Sha256, u64), OpError> {
    let max = spec.max_size;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok((hasher, size)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(spec.fail(format!("reading what was fetched: {e}"))),
        };
        size += n as u64;
        if size > max {
            return Err(spec.fail(format!(
                "the download of {} is larger than {max} bytes: raise .max_size(..)",
                spec.shown_url()
            )));
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])
            .map_err(|e| spec.fail(format!("cannot write what was fetched: {e}")))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetcher_shows_no_password_nor_query() {
        let spec = Download::new("https://u:secret@h/x?sig=token", "/tmp/x");
        let shown = format!("{:?}", controller(&spec));
        assert!(
            !shown.contains("secret") && !shown.contains("token"),
            "{shown}"
        );
        let wget = Fetcher {
            argv: vec!["wget".into(), spec.url.clone()],
            stdin: None,
        };
        let shown = format!("{wget:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("token"),
            "{shown}"
        );
        assert!(shown.contains("h/x?…"), "{shown}");
    }
}
