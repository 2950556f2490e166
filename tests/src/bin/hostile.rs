//! A fake agent, for what the controller does with a hostile host. A
//! command tunnel starts it as `hostile MODE [PLAN] sh -c SCRIPT`; it reads
//! the session's nonce and the shipped executable's hash from the
//! bootstrap script, as a host could, and then:
//!
//! - `garbage`: writes random bytes without end;
//! - `huge-hello`: the preamble, then a frame header announcing 4 GiB, and
//!   stalls;
//! - `early-reply`: the preamble, then a reply before any hello;
//! - `newer`: a hello of the next protocol version;
//! - `older`: a hello of protocol 1, which this version cannot decode;
//! - `plan`: a proper hello; once a call arrives, what the `PLAN` argument
//!   (`chopsticks_tests::hostile::Plan::to_arg`) says.

use std::io::Write;
use std::time::Duration;

use chopsticks::agent::Registry;
use chopsticks_agent::wire::{self, Failure, Hello, Request, Response, PROTOCOL_VERSION};
use chopsticks_tests::hostile::{Piece, Plan};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let script = args.last().cloned().unwrap_or_default();
    let word = |key: &str| {
        script
            .split([' ', ';'])
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_default()
            .to_owned()
    };
    let (nonce, sha256) = (word("T="), word("H="));
    let mut out = std::io::stdout().lock();
    let preamble = format!("chopsticks-agent {nonce}\n");
    let hello = |protocol: u32| {
        let registry = Registry::get().expect("the registry");
        wire::encode_frame(&Response::Hello(Hello {
            protocol,
            version: "0.1.0".into(),
            fingerprint: registry.fingerprint(),
            functions: registry.iter().map(|r| r.id()).collect(),
            exe_sha256: sha256.clone(),
            pid: std::process::id(),
        }))
        .expect("a hello encodes")
    };
    let written = match args.get(1).map(String::as_str) {
        Some("garbage") => {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                for b in chunk.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                if out.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        Some("huge-hello") => [preamble.as_bytes(), &u32::MAX.to_le_bytes()].concat(),
        Some("early-reply") => {
            let reply = wire::encode_frame(&Response::Reply {
                req: 1,
                result: Ok("3".into()),
            })
            .expect("a reply encodes");
            [preamble.into_bytes(), reply].concat()
        }
        Some("newer") => [preamble.into_bytes(), hello(PROTOCOL_VERSION + 1)].concat(),
        Some("older") => {
            let frame = b"\x00\x01\x05hello from an agent of protocol 1";
            let header = (frame.len() as u32).to_le_bytes();
            [preamble.as_bytes(), &header, frame].concat()
        }
        Some("plan") => {
            let plan = args.get(2).and_then(|a| Plan::from_arg(a)).expect("a plan");
            let _ = out.write_all(&[preamble.into_bytes(), hello(PROTOCOL_VERSION)].concat());
            let _ = out.flush();
            let Some(req) = next_call() else { return };
            let _ = out.write_all(&encode(&plan.pieces, req));
            let _ = out.flush();
            if plan.exit {
                return;
            }
            Vec::new()
        }
        other => panic!("unknown mode {other:?}"),
    };
    let _ = out.write_all(&written);
    let _ = out.flush();
    // Stall, reading on, until killed (or for a minute at most).
    drop(out);
    std::thread::spawn(|| while next_call().is_some() {});
    std::thread::sleep(Duration::from_secs(60));
}

/// Reads requests up to the first call; returns its ID.
fn next_call() -> Option<u64> {
    let mut input = std::io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        if !wire::read_frame(&mut input, &mut buf).ok()? {
            return None;
        }
        if let Ok(Request::Call { req, .. }) = postcard::from_bytes(&buf) {
            return Some(req);
        }
    }
}

/// The bytes of `pieces`, sent in answer to call `req`.
fn encode(pieces: &[Piece], req: u64) -> Vec<u8> {
    let frame = |response: &Response| wire::encode_frame(response).expect("encodes");
    let mut bytes = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Bytes(raw) => bytes.extend(raw),
            Piece::Frame(payload) => {
                bytes.extend((payload.len() as u32).to_le_bytes());
                bytes.extend(payload);
            }
            Piece::Announce(len) => bytes.extend(len.to_le_bytes()),
            Piece::Reply { other, result } => bytes.extend(frame(&Response::Reply {
                req: other.unwrap_or(req),
                result: result.clone().map_err(|message| Failure::Error {
                    message,
                    chain: Vec::new(),
                }),
            })),
            Piece::Log {
                level,
                target,
                message,
            } => bytes.extend(frame(&Response::Log {
                level: *level,
                target: target.clone(),
                message: message.clone(),
            })),
            Piece::Data { other, bytes: data } => bytes.extend(frame(&Response::Data {
                req: other.unwrap_or(req),
                bytes: data,
            })),
            Piece::Credit { other, bytes: n } => bytes.extend(frame(&Response::Credit {
                req: other.unwrap_or(req),
                bytes: *n,
            })),
            Piece::Hello => bytes.extend(frame(&Response::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                version: "0.1.0".into(),
                fingerprint: 0,
                functions: Vec::new(),
                exe_sha256: String::new(),
                pid: 0,
            }))),
        }
    }
    bytes
}
