//! What fuzzers and property tests drive: the controller's readers of what
//! a host sends, each checked against what it must never do (panic, cut
//! differently when reads are cut differently, buffer past its bound, let a
//! control character through). Not public API; built with the `fuzzing`
//! feature, for `fuzz/` and the property tests of `tests/tests/readers.rs`.

use super::start::greet::{Greeter, Said};
use crate::wire::{self, Response};

/// How many bytes of junk may come before an agent's hello.
pub const MAX_JUNK: usize = super::start::greet::MAX_JUNK;

/// The session nonce the greetings are read with: short, so that a fuzzer
/// finds it.
pub const NONCE: &str = "n0";

/// Reads `data[1..]` as an agent's output before and including its hello,
/// whole and cut into reads of `1 + data[0]` bytes; both must say the
/// same. Returns what they said.
///
/// # Panics
/// When the two differ, or the unread bytes outgrow their bound.
pub fn greeting(data: &[u8]) -> String {
    let Some((&cut, output)) = data.split_first() else {
        return String::new();
    };
    let whole = greet(output, output.len().max(1));
    let pieces = greet(output, 1 + usize::from(cut));
    assert_eq!(whole, pieces, "the outcome depends on where reads end");
    whole
}

fn greet(output: &[u8], read: usize) -> String {
    let mut greeter = Greeter::new(NONCE);
    let mut unread: Vec<u8> = Vec::new();
    let mut said = Vec::new();
    for piece in output.chunks(read) {
        unread.extend_from_slice(piece);
        loop {
            match greeter.feed(&unread) {
                Ok((used, what)) => {
                    assert!(used <= unread.len(), "consumed more than it was given");
                    unread.drain(..used);
                    match what {
                        Some(Said::Upload(platform)) => said.push(format!("upload {platform}")),
                        Some(Said::Hello(hello)) => {
                            said.push(format!("hello from {}", hello.pid));
                            return said.join("; ");
                        }
                        None => break,
                    }
                }
                Err(refusal) => {
                    said.push(format!("{refusal:?}"));
                    return said.join("; ");
                }
            }
        }
        // Before its hello, an agent gets no more than the junk allowance
        // (plus one read, and a hello frame, which the frame limit bounds).
        let bound = MAX_JUNK + read + 4 + wire::MAX_FRAME;
        assert!(unread.len() <= bound, "{} unread bytes", unread.len());
    }
    said.push(format!("{:?}", greeter.ended()));
    said.join("; ")
}

/// Cuts `stream`, what an agent writes after its hello, into frames as
/// the tunnel's I/O thread does. Returns how many it cut, or why the
/// stream was refused.
///
/// # Panics
/// When a frame is cut wrong or the buffer outgrows its bound.
pub fn frames(stream: &[u8]) -> Result<usize, String> {
    super::conn::check_cut(stream)
}

/// Decodes `frame` as the I/O thread decodes a frame from the agent, and
/// cleans the text a host controls as the controller prints it.
///
/// # Panics
/// When cleaned text still holds a control character.
pub fn response(frame: &[u8]) -> &'static str {
    let printed = |text: &str| {
        let clean = crate::printable(text);
        assert!(
            !clean.chars().any(|c| c.is_control() && c != '\t'),
            "{clean:?} keeps a control character"
        );
    };
    match postcard::from_bytes::<Response>(frame) {
        Ok(Response::Reply { result, .. }) => {
            match result {
                Ok(json) => {
                    let _ = serde_json::from_str::<serde_json::Value>(&json);
                }
                Err(failure) => printed(&format!("{failure:?}")),
            }
            "reply"
        }
        Ok(Response::Log {
            target, message, ..
        }) => {
            printed(&target);
            printed(&message);
            "log"
        }
        Ok(Response::Data { .. }) => "data",
        Ok(Response::Credit { .. }) => "credit",
        Ok(Response::Hello(_)) => "hello",
        Err(_) => "undecodable",
    }
}

/// Strips `elf` of its debug sections as a tunnel does before shipping it
/// (a hostile `agent_binary` may be anything). Returns the stripped size.
///
/// # Panics
/// When stripping grows the file.
pub fn strip(elf: &[u8]) -> Option<usize> {
    let out = super::start::strip::without_debug_info(elf)?;
    assert!(
        out.len() <= elf.len(),
        "stripping grew {} bytes to {}",
        elf.len(),
        out.len()
    );
    Some(out.len())
}
