//! Fetching with `curl` or `wget`: the program writes the content to its
//! stdout, which is streamed into a file here, hashed and counted on the
//! way; the program is killed (with what it started) past the size or the
//! time limit, or when the call is cancelled ([`Program::stream`]). No
//! shell: the arguments are given as they are; neither reads its
//! configuration file (`~/.curlrc`, `.wgetrc`), which could redirect the
//! output, turn off TLS checks or send it through a proxy.

use std::io::Write;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{shown, Download, OP};
use crate::ops::process::Program;
use crate::ops::OpError;

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

/// curl's arguments: no `~/.curlrc` (`-q`, which works only as the
/// first argument), fail on HTTP errors, follow redirects over HTTP(S)
/// only, within the spec's size and time; the URL comes on stdin.
fn curl(program: String, spec: &Download) -> Fetcher {
    let argv = [
        program.as_str(),
        "-q",
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
    let wget = wget.display().to_string();
    let mut argv = vec![wget.clone()];
    if gnu_wget(&wget) {
        // Busybox's reads no configuration; GNU's reads `.wgetrc`.
        argv.push("--no-config".into());
    }
    argv.extend(["-q", "-O", "-", &spec.url].map(String::from));
    Ok(Fetcher { argv, stdin: None })
}

/// Whether `wget` is GNU Wget (`--version` says so; busybox's refuses
/// the option).
fn gnu_wget(wget: &str) -> bool {
    let argv = [wget.to_owned(), "--version".to_owned()];
    let asked = Program {
        argv: &argv,
        env: &[],
        cwd: None,
        shown: "`wget --version`",
        timeout: Some(Duration::from_secs(10)),
    }
    .output(OP);
    asked.is_ok_and(|out| out.status == 0 && out.stdout.contains("GNU Wget"))
}

/// Runs `fetcher` (as [`Program`] runs a program: within the spec's time
/// limit, killed with what it started when the call is cancelled) and
/// streams what it fetches into `out`; checks the SHA-256 against `want`
/// when given. Returns the SHA-256 (hex) and the size.
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
    let program = fetcher.argv.first().map_or("curl", String::as_str);
    let shown = format!("`{program}`");
    let run = Program {
        argv: &fetcher.argv,
        env: &[],
        cwd: None,
        shown: &shown,
        timeout: Some(spec.timeout),
    };
    let (max, mut size, mut hasher) = (spec.max_size, 0u64, Sha256::new());
    let mut refused = None;
    let ran = run.stream(
        OP,
        fetcher.stdin.as_deref().map(str::as_bytes),
        &mut |bytes| {
            size += bytes.len() as u64;
            let stop = match size > max {
                true => Some(format!(
                    "the download of {url} is larger than {max} bytes: raise .max_size(..)"
                )),
                false => out
                    .write_all(bytes)
                    .err()
                    .map(|e| format!("cannot write what was fetched: {e}")),
            };
            hasher.update(bytes);
            match stop {
                Some(message) => {
                    refused = Some(spec.fail(message));
                    Err(OpError::new(OP, "", "refused"))
                }
                None => Ok(()),
            }
        },
    );
    if let Some(e) = refused {
        return Err(e);
    }
    let (status, said) = ran.map_err(|e| {
        spec.fail(format!(
            "fetching {url} with `{program}`: {} (install curl, or use .on_host())",
            e.message
        ))
    })?;
    if status != 0 {
        let said = said.trim();
        let said = match said.is_empty() {
            true => format!("it exited with status {status}"),
            false => said
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ")
                .replace(&spec.url, &url),
        };
        return Err(spec.fail(format!("`{program}` could not fetch {url}: {said}")));
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

    #[test]
    fn curl_reads_no_curlrc() {
        let spec = Download::new("https://h/x", "/tmp/x");
        assert_eq!(controller(&spec).argv[..2], ["curl", "-q"]);
    }

    /// A `~/.curlrc` that would write the content elsewhere changes
    /// nothing: curl runs with `-q`.
    #[test]
    fn a_curlrc_is_not_read() {
        let home = std::env::temp_dir().join(format!("cs-curlrc-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let elsewhere = home.join("elsewhere");
        std::fs::write(
            home.join(".curlrc"),
            format!("output = \"{}\"\n", elsewhere.display()),
        )
        .unwrap();
        std::fs::write(home.join("content"), "the content\n").unwrap();
        // curl takes file:// here; the spec's own check is not in the way.
        let spec = Download::new(format!("file://{}/content", home.display()), "/tmp/x");
        let mut fetcher = controller(&spec);
        fetcher.argv.retain(|a| !a.contains("http"));
        fetcher
            .argv
            .retain(|a| a != "--proto" && a != "--proto-redir");
        let mut got = Vec::new();
        let argv = fetcher.argv.clone();
        let env = [("HOME".to_owned(), home.display().to_string())];
        let (status, _) = Program {
            argv: &argv,
            env: &env,
            cwd: None,
            shown: "`curl`",
            timeout: Some(Duration::from_secs(10)),
        }
        .stream(OP, fetcher.stdin.as_deref().map(str::as_bytes), &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!((status, got.as_slice()), (0, &b"the content\n"[..]));
        assert!(!elsewhere.exists());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
