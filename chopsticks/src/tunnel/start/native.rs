//! The system's own `sha256sum` and `gzip`, for a program built without
//! optimisation: its hashing and compressing code is unoptimised too (a
//! user's crate does not get the workspace's profile overrides), and the
//! first run after each rebuild hashes and compresses the whole agent. The
//! system's tools are optimised whatever the user's profile; where one is
//! missing or fails, the caller does the work itself.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether this code was built without optimisation, so that the system's
/// tools are worth a process each.
pub(crate) const UNOPTIMISED: bool = cfg!(debug_assertions);

/// How long a tool may take before it is stopped and the caller does the
/// work itself.
const LIMIT: Duration = Duration::from_secs(60);

/// The lower-case hex SHA-256 of `data`, by `sha256sum`.
pub(crate) fn sha256(data: &[u8]) -> Option<String> {
    let out = filter("sha256sum", &["-b", "-"], data)?;
    let hex = std::str::from_utf8(out.get(..64)?).ok()?;
    let ok = hex.bytes().all(|b| b.is_ascii_hexdigit()) && out.get(64) == Some(&b' ');
    ok.then(|| hex.to_ascii_lowercase())
}

/// `data` gzip-compressed at `level` (1 to 9), by `gzip`.
pub(crate) fn gzip(data: &[u8], level: u32) -> Option<Vec<u8>> {
    let level = format!("-{}", level.clamp(1, 9));
    let out = filter("gzip", &["-c", "-n", &level], data)?;
    // The gzip magic: anything else is not what was asked for.
    out.starts_with(&[0x1f, 0x8b]).then_some(out)
}

/// What `program args` writes on stdout for `data` on its stdin, if it
/// runs, succeeds and ends within [`LIMIT`]. The tool runs in a process
/// group of its own, killed whole past the limit: a tool that stops
/// reading, or a child of it that keeps the pipe open, cannot hold the
/// caller.
fn filter(program: &str, args: &[&str], data: &[u8]) -> Option<Vec<u8>> {
    use std::os::unix::process::CommandExt as _;
    let deadline = Instant::now() + LIMIT;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()?;
    let group = i32::try_from(child.id()).ok()?;
    let (mut stdin, mut stdout) = (child.stdin.take()?, child.stdout.take()?);
    let (done, ended) = mpsc::channel();
    let result = std::thread::scope(|scope| {
        let reader = scope.spawn({
            let done = done.clone();
            move || {
                let mut out = Vec::new();
                let read = stdout.read_to_end(&mut out);
                let _ = done.send(());
                read.map(|_| out)
            }
        });
        let writer = scope.spawn(move || {
            let written = stdin.write_all(data);
            drop(stdin);
            let _ = done.send(());
            written
        });
        // Both ends done within the limit, or the group is killed (which
        // closes the pipes, so both threads end).
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if ended.recv_timeout(left).is_err() {
                // SAFETY: kill(2) on the tool's own process group.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                break;
            }
        }
        let written = writer.join().ok()?.ok();
        let read = reader.join().ok()?.ok();
        written.and(read)
    });
    let status = child.wait().ok()?;
    result.filter(|_| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systems_tools_agree_with_ours() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (ours, _) = chopsticks_agent::value::sha256_hex(&data[..]).unwrap();
        assert_eq!(sha256(&data).expect("sha256sum on PATH"), ours);
        let gz = gzip(&data, 3).expect("gzip on PATH");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data && gz.len() < data.len() / 4);
    }

    #[test]
    fn a_missing_tool_is_no_answer() {
        assert_eq!(filter("chopsticks-no-such-tool", &[], b"x"), None);
        assert_eq!(filter("false", &[], b"x"), None);
    }
}
