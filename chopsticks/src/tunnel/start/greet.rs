//! The handshake, as a parser of what the agent's output says before its
//! first frame: skip what the remote shell prints, notice the bootstrap's
//! markers (an upload request, an error), find the
//! agent's preamble line, then read its hello. The tunnel's I/O thread
//! feeds it bytes as they come; it does no I/O itself.

use std::fs::File;

use super::{Refusal, Ship};
use crate::contract::{ERROR_MARKER, PREAMBLE, UPLOAD_MARKER};
use crate::tunnel::arch::rust_arch;
use crate::wire::{self, Hello, Response};

/// Junk (login banners, test-harness chatter) tolerated before the preamble.
pub(crate) const MAX_JUNK: usize = 64 * 1024;
/// The longest line the bootstrap's markers make (a longer one is junk).
const MAX_MARKER_LINE: usize = 4096;

/// A line without its line end (`\n`, and any `\r` before it).
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let end = line.iter().rposition(|b| *b != b'\r').map_or(0, |i| i + 1);
    &line[..end]
}

/// What the I/O thread tells the thread that waits for a connection.
pub(crate) enum Event {
    /// The agent is being uploaded: allow the upload its own time.
    Uploading,
    /// The handshake ended: the hello, the agent's input, and whether the
    /// agent was uploaded.
    Done(Result<(Hello, File, bool), Refusal>),
}

/// What the agent's output said, once it said something.
#[derive(Debug)]
pub(crate) enum Said {
    /// The bootstrap asks for the agent binary; the text is `uname -s -m`.
    Upload(String),
    /// The agent's hello: the handshake is over.
    Hello(Hello),
}

/// Reads one session's handshake from the agent's output.
pub(crate) struct Greeter {
    preamble: String,
    upload: String,
    error: String,
    /// Skipped lines, kept for the error that quotes them.
    junk: Vec<u8>,
    /// The preamble was seen: the hello frame is next.
    greeted: bool,
    /// How much of the unfinished line was searched for its end already
    /// (a host that writes a byte at a time costs no more than one that
    /// writes lines).
    searched: usize,
}

impl Greeter {
    pub(crate) fn new(nonce: &str) -> Greeter {
        Greeter {
            preamble: format!("{PREAMBLE} {nonce}"),
            upload: format!("{UPLOAD_MARKER} {nonce} "),
            error: format!("{ERROR_MARKER} {nonce} "),
            junk: Vec::new(),
            greeted: false,
            searched: 0,
        }
    }

    /// Looks at `input`, what the agent wrote and nobody consumed yet
    /// (what the last call left unconsumed, then what came since).
    /// Returns how many bytes it consumed, and what they said, if anything
    /// (`None`: more output is needed).
    ///
    /// # Errors
    /// A bootstrap error, too much junk, or a hello that
    /// is not one.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Said>), Refusal> {
        let mut used = 0;
        while !self.greeted {
            let rest = &input[used..];
            let from = self.searched.min(rest.len());
            let end = rest[from..].iter().position(|b| *b == b'\n');
            let Some(end) = end.map(|at| from + at) else {
                self.searched = rest.len();
                // An unfinished line counts as junk as soon as it can be
                // nothing else, so the outcome never depends on where the
                // reads cut the output.
                if !self.may_be_marker(rest) && self.junk.len() + rest.len() > MAX_JUNK {
                    self.junk.extend_from_slice(rest);
                    return Err(self.too_much_junk());
                }
                return Ok((used, None));
            };
            let line = &rest[..=end];
            used += line.len();
            self.searched = 0;
            let text = trim_line_end(line);
            if line.len() > MAX_MARKER_LINE {
                // Too long for a line of ours.
            } else if text == self.preamble.as_bytes() {
                self.greeted = true;
                continue;
            } else if let Some(message) = text.strip_prefix(self.error.as_bytes()) {
                let message = String::from_utf8_lossy(message).into_owned();
                return Err(Refusal::Script(message));
            } else if let Some(platform) = text.strip_prefix(self.upload.as_bytes()) {
                let platform = String::from_utf8_lossy(platform).into_owned();
                return Ok((used, Some(Said::Upload(platform))));
            }
            self.junk.extend_from_slice(line);
            if self.junk.len() > MAX_JUNK {
                return Err(self.too_much_junk());
            }
        }
        let rest = &input[used..];
        let Some(header) = rest.first_chunk::<4>() else {
            return Ok((used, None));
        };
        let len = u32::from_le_bytes(*header) as usize;
        if len > wire::MAX_FRAME {
            return Err("its hello is not a frame: the stream is corrupt".into());
        }
        let Some(frame) = rest.get(4..4 + len) else {
            return Ok((used, None));
        };
        let hello = decode_hello(frame)?;
        Ok((used + 4 + len, Some(Said::Hello(hello))))
    }

    /// Whether the unfinished line `part` may still become the preamble or
    /// a marker line.
    fn may_be_marker(&self, part: &[u8]) -> bool {
        if part.len() > MAX_MARKER_LINE {
            return false;
        }
        let part = trim_line_end(part);
        let begins = |line: &str| {
            let line = line.as_bytes();
            line.starts_with(part) || part.starts_with(line)
        };
        self.preamble.as_bytes().starts_with(part) || begins(&self.upload) || begins(&self.error)
    }

    /// Why there is no greeting when the agent's output ended.
    pub(crate) fn ended(&self) -> Refusal {
        Refusal::Agent(if self.greeted {
            "it exited right after its preamble".into()
        } else if self.junk.is_empty() {
            "it exited before saying hello".into()
        } else {
            format!(
                "it exited before saying hello; it printed: {:?}",
                preview(&self.junk)
            )
        })
    }

    fn too_much_junk(&self) -> Refusal {
        Refusal::Agent(format!(
            "it wrote {MAX_JUNK} bytes without the chopsticks preamble; it starts with: {:?}",
            preview(&self.junk)
        ))
    }
}

fn decode_hello(frame: &[u8]) -> Result<Hello, Refusal> {
    match postcard::from_bytes::<Response>(frame) {
        Ok(Response::Hello(hello)) => Ok(hello),
        Ok(
            Response::Reply { .. }
            | Response::Log { .. }
            | Response::Data { .. }
            | Response::Credit { .. },
        ) => Err("it sent a message before saying hello".into()),
        // Another version: the protocol number comes right after the variant tag.
        Err(_) => match postcard::take_from_bytes::<(u8, u32)>(frame) {
            Ok(((0, protocol), _)) if protocol != wire::PROTOCOL_VERSION => {
                Err(Refusal::Stale(protocol_mismatch(protocol, None)))
            }
            _ => Err("its hello is undecodable".into()),
        },
    }
}

/// Why an agent of protocol `theirs` (built with chopsticks
/// `their_version`, when known) cannot serve this program, and which side
/// to rebuild.
pub(crate) fn protocol_mismatch(theirs: u32, their_version: Option<&str>) -> String {
    let ours = wire::PROTOCOL_VERSION;
    let version = env!("CARGO_PKG_VERSION");
    let built = their_version.map_or(String::new(), |v| format!(" (chopsticks {v})"));
    let advice = if theirs < ours {
        "the agent is older: rebuild the agent binary from this program's source (or point \
         `agent_binary` / CHOPSTICKS_AGENT_BINARY at a fresh build)"
    } else {
        "the agent is newer: rebuild this program with the chopsticks version the agent was \
         built with"
    };
    format!(
        "the agent speaks protocol {theirs}{built}, this program speaks {ours} (chopsticks \
         {version}); {advice}"
    )
}

/// What to send for an upload request from a host that runs `platform`
/// (`uname -s -m`): a line with the length of what follows and its form
/// (`raw` to a near host, else `gz`), then the agent in that form (the
/// image's own bytes, shared by every host it goes to).
///
/// # Errors
/// When nothing can be shipped here, the host runs another platform than
/// the one this program is built for, or the agent cannot be compressed.
pub(crate) fn upload(
    ship: Option<&Ship>,
    platform: &str,
) -> Result<(Vec<u8>, std::sync::Arc<Vec<u8>>), Refusal> {
    let Some(ship) = ship else {
        return Err("it asked for an upload, but nothing can be shipped here".into());
    };
    let mut words = platform.split_whitespace();
    let (os, machine) = (words.next().unwrap_or("?"), words.next().unwrap_or("?"));
    let arch = rust_arch(machine);
    let other = ship
        .others
        .iter()
        .find(|(other, _)| os == "Linux" && Some(other.as_str()) == arch);
    let image = match (other, &ship.platform) {
        (Some((_, image)), _) => image,
        (None, Some((our_os, our_arch)))
            if os != our_os || arch.is_some_and(|arch| arch != our_arch) =>
        {
            let build = match (os, arch) {
                ("Linux", Some(arch)) => format!(
                    ": build it with `cargo build --release --target \
                     {arch}-unknown-linux-musl` (`cargo zigbuild` when no linker for it is \
                     installed) and pass it with `agent_binary_for(\"{arch}\", path)` or \
                     CHOPSTICKS_AGENT_BINARY_{}=path",
                    arch.to_ascii_uppercase()
                ),
                _ => ": build the agent for it and set it with `agent_binary`".to_owned(),
            };
            let have: Vec<&str> = std::iter::once(our_arch.as_str())
                .chain(ship.others.iter().map(|(arch, _)| arch.as_str()))
                .collect();
            return Err(Refusal::Script(format!(
                "the host runs {os} {machine}, and there is no agent for it (this program \
                 has agents for {}){build}",
                have.join(", ")
            )));
        }
        (None, _) => &ship.image,
    };
    // Near, the agent goes as it is: faster than compressing it.
    let (form, data) = match (ship.near)() {
        true => ("raw", image.raw()),
        false => ("gz", image.gzip()),
    };
    let data = data.map_err(Refusal::Script)?;
    log::debug!(
        "chopsticks: uploading {} ({} bytes, {} sent, {form})",
        image.path.display(),
        image.size,
        data.len()
    );
    let head = format!("{} {form}\n", data.len()).into_bytes();
    Ok((head, data))
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]);
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_frame() -> Vec<u8> {
        wire::encode_frame(&Response::Hello(Hello {
            protocol: wire::PROTOCOL_VERSION,
            version: "x".into(),
            fingerprint: 1,
            functions: vec![],
            exe_sha256: String::new(),
            pid: 7,
        }))
        .unwrap()
    }

    #[test]
    fn junk_markers_and_the_hello_are_read_in_pieces() {
        let mut g = Greeter::new("n1");
        let mut out = b"Welcome\r\nchopsticks-upload n1 Linux x86_64\nrunning 1 test\n".to_vec();
        out.extend(b"chopsticks-agent n1\n");
        out.extend(hello_frame());
        out.extend(b"after");
        let (mut at, mut saw) = (0, Vec::new());
        // One byte more at a time: every split point is handled.
        for end in 1..=out.len() {
            let (used, said) = g.feed(&out[at..end]).unwrap();
            at += used;
            let hello = matches!(said, Some(Said::Hello(_)));
            saw.extend(said);
            if hello {
                break;
            }
        }
        assert_eq!(saw.len(), 2, "{saw:?}");
        assert!(matches!(&saw[0], Said::Upload(p) if p == "Linux x86_64"));
        assert!(matches!(&saw[1], Said::Hello(h) if h.pid == 7));
        assert_eq!(&out[at..], b"after", "nothing after the hello is consumed");
        assert!(matches!(g.ended(), Refusal::Agent(m) if m.contains("right after")));
    }

    #[test]
    fn markers_of_another_session_are_junk_and_errors_end_the_greeting() {
        let mut g = Greeter::new("n1");
        let (used, said) = g.feed(b"chopsticks-error n0 old\n").unwrap();
        assert_eq!((used, said.is_none()), (24, true));
        let err = g
            .feed(b"chopsticks-error n1 no cache directory\n")
            .unwrap_err();
        assert!(matches!(err, Refusal::Script(m) if m == "no cache directory"));
        let err = Greeter::new("n1")
            .feed(&vec![b'x'; MAX_JUNK + 1])
            .unwrap_err();
        assert!(matches!(err, Refusal::Agent(m) if m.contains("without the chopsticks preamble")));
        let g = Greeter::new("n1");
        assert!(matches!(g.ended(), Refusal::Agent(m) if m == "it exited before saying hello"));
    }

    /// Hellos of protocols 1 and 2 (older agents) and one of a future protocol
    /// whose hello this version cannot decode: both name the versions and
    /// the side to rebuild.
    #[test]
    fn another_protocol_says_which_side_to_rebuild() {
        // 1: before streams; 2: before `ops::Change::duration`.
        for version in [1u8, 2] {
            let mut old = vec![0u8, version];
            old.extend(b"\x05garbage that an older version would have sent");
            match decode_hello(&old) {
                Err(Refusal::Stale(m)) => {
                    let names = format!(
                        "protocol {version}, this program speaks {}",
                        wire::PROTOCOL_VERSION
                    );
                    assert!(m.contains(&names), "{m}");
                    assert!(
                        m.contains("the agent is older: rebuild the agent binary"),
                        "{m}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let newer = [0u8, 9, 0xff, 0xff, 0xff];
        match decode_hello(&newer) {
            Err(Refusal::Stale(m)) => {
                assert!(
                    m.contains("the agent is newer: rebuild this program"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let m = protocol_mismatch(1, Some("0.0.9"));
        assert!(m.contains("protocol 1 (chopsticks 0.0.9)"), "{m}");
        assert!(!m.contains("  "), "{m}");
    }
}
