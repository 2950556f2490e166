//! The handshake: skip what the remote shell prints, find the agent's
//! preamble line, read its hello.

use std::io::{BufRead, BufReader, Read};
use std::process::{ChildStdin, ChildStdout};

use crate::wire::{self, Hello, Response};

/// Junk (login banners, test-harness chatter) tolerated before the preamble.
const MAX_JUNK: usize = 64 * 1024;

/// The agent's hello, its output positioned after it, and its input.
pub(crate) type Greeting = Result<(Hello, BufReader<ChildStdout>, ChildStdin), String>;

/// Reads lines up to the preamble, then the hello frame.
pub(crate) fn greet(stdout: ChildStdout, stdin: ChildStdin, nonce: &str) -> Greeting {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let expected = format!("{} {nonce}", wire::PREAMBLE);
    let mut junk = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take((MAX_JUNK + 1 - junk.len().min(MAX_JUNK)) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading the agent's output: {e}"))?;
        if n == 0 {
            return Err(exited_early(&junk));
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim_end_matches(['\n', '\r']) == expected {
            break;
        }
        junk.extend_from_slice(&line);
        if junk.len() > MAX_JUNK {
            return Err(format!(
                "it wrote {MAX_JUNK} bytes without the chopsticks preamble; it starts with: {:?}",
                preview(&junk)
            ));
        }
    }
    let mut buf = Vec::new();
    match wire::read_frame(&mut reader, &mut buf) {
        Ok(true) => {}
        Ok(false) => return Err("it exited right after its preamble".into()),
        Err(e) => return Err(format!("reading its hello: {e}")),
    }
    match postcard::from_bytes::<Response>(&buf) {
        Ok(Response::Hello(hello)) => Ok((hello, reader, stdin)),
        Ok(Response::Reply { .. }) => Err("it replied before saying hello".into()),
        // Another version: the protocol number comes right after the variant tag.
        Err(_) => match postcard::take_from_bytes::<(u8, u32)>(&buf) {
            Ok(((0, protocol), _)) if protocol != wire::PROTOCOL_VERSION => Err(format!(
                "the agent speaks protocol {protocol}, this program speaks {}; rebuild the agent \
                 binary with the same chopsticks version",
                wire::PROTOCOL_VERSION
            )),
            _ => Err("its hello is undecodable".into()),
        },
    }
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
