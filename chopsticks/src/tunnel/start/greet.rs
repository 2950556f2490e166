//! The handshake: skip what the remote shell prints, upload the agent when
//! the bootstrap script asks for it, find the agent's preamble line, read
//! its hello.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::Sender;

use super::{Refusal, Ship};
use crate::contract::{CORRUPT_MARKER, ERROR_MARKER, PREAMBLE, UPLOAD_MARKER};
use crate::wire::{self, Hello, Response};

/// Junk (login banners, test-harness chatter) tolerated before the preamble.
const MAX_JUNK: usize = 64 * 1024;

/// A finished handshake.
pub(crate) struct Greeted {
    pub hello: Hello,
    /// The agent's output, positioned after the hello.
    pub reader: BufReader<File>,
    pub to_agent: File,
    /// Whether the agent binary was uploaded on the way.
    pub uploaded: bool,
}

/// What the handshake tells the thread waiting for it.
pub(crate) enum Event {
    /// The agent is being uploaded: allow the upload its own time.
    Uploading,
    /// The handshake ended: the hello, the agent's input, whether the
    /// agent was uploaded.
    Done(Result<(Hello, File, bool), Refusal>),
}

/// Reads lines up to the preamble (uploading the agent when asked), then the
/// hello frame.
pub(crate) fn greet(
    from_agent: File,
    mut to_agent: File,
    nonce: &str,
    ship: Option<&Ship>,
    events: &Sender<Event>,
) -> Result<Greeted, Refusal> {
    let mut reader = BufReader::with_capacity(64 * 1024, from_agent);
    let expected = format!("{PREAMBLE} {nonce}");
    let upload = format!("{UPLOAD_MARKER} {nonce} ");
    let error = format!("{ERROR_MARKER} {nonce} ");
    let corrupt = format!("{CORRUPT_MARKER} {nonce} ");
    let mut junk = Vec::new();
    let mut line = Vec::new();
    let mut uploaded = false;
    loop {
        line.clear();
        let n = (&mut reader)
            .take((MAX_JUNK + 1 - junk.len().min(MAX_JUNK)) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| Refusal::Agent(format!("reading the agent's output: {e}")))?;
        if n == 0 {
            return Err(Refusal::Agent(exited_early(&junk)));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text == expected {
            break;
        }
        if let Some(message) = text.strip_prefix(&error) {
            return Err(Refusal::Script(message.to_owned()));
        }
        if let Some(message) = text.strip_prefix(&corrupt) {
            return Err(Refusal::Corrupt(message.to_owned()));
        }
        if let Some(platform) = text.strip_prefix(&upload) {
            let Some(ship) = ship else {
                return Err("it asked for an upload, but nothing can be shipped here".into());
            };
            send_agent(ship, platform, &mut to_agent, events)?;
            uploaded = true;
            continue;
        }
        junk.extend_from_slice(&line);
        if junk.len() > MAX_JUNK {
            return Err(Refusal::Agent(format!(
                "it wrote {MAX_JUNK} bytes without the chopsticks preamble; it starts with: {:?}",
                preview(&junk)
            )));
        }
    }
    let mut buf = Vec::new();
    match wire::read_frame(&mut reader, &mut buf) {
        Ok(true) => {}
        Ok(false) => return Err("it exited right after its preamble".into()),
        Err(e) => return Err(format!("reading its hello: {e}").into()),
    }
    match postcard::from_bytes::<Response>(&buf) {
        Ok(Response::Hello(hello)) => Ok(Greeted {
            hello,
            reader,
            to_agent,
            uploaded,
        }),
        Ok(Response::Reply { .. } | Response::Log { .. }) => {
            Err("it sent a message before saying hello".into())
        }
        // Another version: the protocol number comes right after the variant tag.
        Err(_) => match postcard::take_from_bytes::<(u8, u32)>(&buf) {
            Ok(((0, protocol), _)) if protocol != wire::PROTOCOL_VERSION => {
                Err(Refusal::Stale(format!(
                    "the agent speaks protocol {protocol}, this program speaks {}; rebuild the \
                     agent binary with the same chopsticks version",
                    wire::PROTOCOL_VERSION
                )))
            }
            _ => Err("its hello is undecodable".into()),
        },
    }
}

fn send_agent(
    ship: &Ship,
    platform: &str,
    to_agent: &mut File,
    events: &Sender<Event>,
) -> Result<(), Refusal> {
    let mut words = platform.split_whitespace();
    let (os, machine) = (words.next().unwrap_or("?"), words.next().unwrap_or("?"));
    if let Some((our_os, our_arch)) = &ship.platform {
        let arch = rust_arch(machine);
        if os != our_os || arch.is_some_and(|arch| arch != our_arch) {
            let target = match (os, arch) {
                ("Linux", Some(arch)) => format!(" (e.g. `--target {arch}-unknown-linux-musl`)"),
                _ => String::new(),
            };
            return Err(Refusal::Script(format!(
                "the host runs {os} {machine}, and this program is built for {our_os} \
                 {our_arch}: build the agent for the host{target} and set it with \
                 `agent_binary` or CHOPSTICKS_AGENT_BINARY"
            )));
        }
    }
    // Compressing is part of the upload (and of its time bound).
    let _ = events.send(Event::Uploading);
    let gz = ship.image.gzip().map_err(Refusal::Script)?;
    let sent = to_agent
        .write_all(format!("{}\n", gz.len()).as_bytes())
        .and_then(|()| to_agent.write_all(&gz))
        .and_then(|()| to_agent.flush());
    sent.map_err(|e| Refusal::Agent(format!("uploading the agent failed: {e}")))
}

/// Rust's name (`std::env::consts::ARCH`) for a `uname -m` machine name,
/// when known.
fn rust_arch(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "x86_64" | "amd64" => "x86_64",
        "aarch64" | "arm64" => "aarch64",
        "i386" | "i486" | "i586" | "i686" => "x86",
        m if m.starts_with("armv") => "arm",
        "riscv64" => "riscv64",
        "ppc64le" | "ppc64" => "powerpc64",
        "s390x" => "s390x",
        "loongarch64" => "loongarch64",
        _ => return None,
    })
}

fn exited_early(junk: &[u8]) -> String {
    if junk.is_empty() {
        "it exited before saying hello".into()
    } else {
        format!(
            "it exited before saying hello; it printed: {:?}",
            preview(junk)
        )
    }
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]);
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::rust_arch;

    #[test]
    fn uname_machines_map_to_rust_arches() {
        assert_eq!(rust_arch("x86_64"), Some("x86_64"));
        assert_eq!(rust_arch("arm64"), Some("aarch64"));
        assert_eq!(rust_arch("armv7l"), Some("arm"));
        assert_eq!(rust_arch("i686"), Some("x86"));
        assert_eq!(rust_arch("vax"), None);
        assert_eq!(
            rust_arch(std::env::consts::ARCH),
            Some(std::env::consts::ARCH)
        );
    }
}
