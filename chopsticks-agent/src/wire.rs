//! The wire format between controller and agent (see `docs/PROTOCOL.md`).
//!
//! After a one-line preamble, each side sends frames: a 4-byte little-endian
//! length, then that many bytes of one postcard-encoded message.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of the messages below, or of the
/// types the kit's operations take and return (3: `ops::Change` gained
/// `duration`; 4: `digest`; postcard has no optional fields).
pub const PROTOCOL_VERSION: u32 = 4;

/// The largest frame either side accepts (64 MiB). Larger data belongs in a
/// file transfer, not in a call's arguments or return value.
pub const MAX_FRAME: usize = 64 << 20;

/// The most bytes one `Data` frame carries.
pub const DATA_CHUNK: usize = 128 << 10;

/// The credit each stream starts with: how many bytes its sender may send
/// before the receiver grants more. It bounds what a stream buffers.
pub const STREAM_WINDOW: u64 = 2 << 20;

/// Serializes a byte slice in one piece: postcard writes the same varint
/// length and raw bytes as for a sequence of `u8` (the wire is unchanged),
/// without a serializer call per byte (it was the agent's and the
/// controller's costliest step of a transfer after SHA-256).
fn as_bytes<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// Controller to agent.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Run function `fn_id` on the postcard-encoded argument tuple `args`.
    Call {
        /// Request ID; the reply carries it back.
        req: u64,
        /// The function's wire ID.
        fn_id: u64,
        /// The postcard-encoded argument tuple.
        #[serde(borrow, serialize_with = "as_bytes")]
        args: &'a [u8],
        /// The call has an input stream: `Data` frames of this `req` follow.
        input: bool,
        /// The controller takes an output stream: the function may send
        /// `Data` frames of this `req` before its reply.
        output: bool,
    },
    /// Exit now; calls still running are abandoned.
    Shutdown,
    /// Bytes of call `req`'s input stream (at most [`DATA_CHUNK`], within
    /// the credit the agent granted).
    Data {
        /// The call the stream belongs to.
        req: u64,
        /// The bytes.
        #[serde(borrow, serialize_with = "as_bytes")]
        bytes: &'a [u8],
    },
    /// Call `req`'s input stream ends: every byte was sent.
    End {
        /// The call the stream belongs to.
        req: u64,
    },
    /// The agent may send `bytes` more on call `req`'s output stream.
    Credit {
        /// The call the stream belongs to.
        req: u64,
        /// How many more bytes.
        bytes: u64,
    },
    /// The controller gave up on call `req` (its deadline passed, its
    /// handle was dropped, or writing what it sent failed): its streams
    /// fail at both ends, and its reply, if any, is discarded.
    Cancel {
        /// The call given up.
        req: u64,
    },
}

/// Agent to controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response<'a> {
    /// The first frame: who the agent is.
    Hello(Hello),
    /// The outcome of one call.
    Reply {
        /// The request ID of the call.
        req: u64,
        /// The JSON-encoded return value, or why there is none.
        result: Result<String, Failure>,
    },
    /// A `log` record made on the agent (by a remote function).
    Log {
        /// `log::Level` as a number: 1 = error ... 5 = trace.
        level: u8,
        /// The record's target (by default its module path).
        target: String,
        /// The formatted message.
        message: String,
    },
    /// Bytes of call `req`'s output stream (at most [`DATA_CHUNK`], within
    /// the credit the controller granted). The stream ends with the reply.
    Data {
        /// The call the stream belongs to.
        req: u64,
        /// The bytes.
        #[serde(borrow, serialize_with = "as_bytes")]
        bytes: &'a [u8],
    },
    /// The controller may send `bytes` more on call `req`'s input stream.
    Credit {
        /// The call the stream belongs to.
        req: u64,
        /// How many more bytes.
        bytes: u64,
    },
}

/// What the agent says about itself before anything else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the agent. Kept first so that it can be read
    /// even when the rest of the message changed.
    pub protocol: u32,
    /// The chopsticks version the agent was built with.
    pub version: String,
    /// The fingerprint of the agent's registry.
    pub fingerprint: u64,
    /// The wire IDs the agent can run.
    pub functions: Vec<u64>,
    /// SHA-256 (hex) of the agent executable as verified by whoever started
    /// it (the SSH bootstrap); empty when nobody checked it.
    pub exe_sha256: String,
    /// The agent's process ID.
    pub pid: u32,
}

/// Why a call produced no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The function returned `Err(e)`: `e`'s message and its source chain.
    Error {
        /// `e.to_string()`.
        message: String,
        /// The messages of `e.source()`, its source, and so on.
        chain: Vec<String>,
    },
    /// The function panicked.
    Panic {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The agent has no function with this wire ID.
    UnknownFunction {
        /// The requested wire ID.
        fn_id: u64,
    },
    /// The arguments could not be decoded into the function's parameter types.
    BadArgs {
        /// The decoder's message.
        message: String,
    },
    /// The return value could not be encoded as JSON.
    BadReturn {
        /// The encoder's message.
        message: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error { message, .. } => f.write_str(message),
            Failure::Panic { message, location } => match location {
                Some(at) => write!(f, "panicked at {at}: {message}"),
                None => write!(f, "panicked: {message}"),
            },
            Failure::UnknownFunction { fn_id } => {
                write!(f, "the agent has no function with wire ID {fn_id:016x}")
            }
            Failure::BadArgs { message } => write!(f, "cannot decode the arguments: {message}"),
            Failure::BadReturn { message } => {
                write!(f, "cannot encode the return value as JSON: {message}")
            }
        }
    }
}

/// A `log::Level` from its number on the wire (1 = error ... 5 = trace,
/// as `level as u8` gives); `None` for 0 (off) and unknown numbers.
pub fn level_from_wire(level: u8) -> Option<log::Level> {
    log::Level::iter().find(|l| *l as u8 == level)
}

/// Encodes `msg` as one frame (length prefix included).
///
/// # Errors
/// When the message cannot be encoded or is larger than [`MAX_FRAME`].
pub fn encode_frame<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let frame = postcard::to_extend(msg, vec![0u8; 4])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = frame.len() - 4;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes exceeds the frame limit of {MAX_FRAME} bytes"),
        ));
    }
    let mut frame = frame;
    frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(frame)
}

/// Writes one encoded frame and flushes.
///
/// # Errors
/// When writing fails.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

/// Reads one frame's payload into `buf`. Returns `Ok(false)` on a clean EOF
/// before the frame started.
///
/// # Errors
/// On a truncated frame, a frame over [`MAX_FRAME`], or a read error.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "frame length {len} exceeds the limit of {MAX_FRAME} bytes: \
                 the stream is corrupt or not a chopsticks agent"
            ),
        ));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let args = [1u8, 2, 3];
        let frame = encode_frame(&Request::Call {
            req: 7,
            fn_id: 42,
            args: &args,
            input: true,
            output: false,
        })
        .unwrap();
        let mut buf = Vec::new();
        let mut r = &frame[..];
        assert!(read_frame(&mut r, &mut buf).unwrap());
        match postcard::from_bytes::<Request>(&buf).unwrap() {
            Request::Call {
                req,
                fn_id,
                args,
                input,
                output,
            } => assert_eq!(
                (req, fn_id, args, input, output),
                (7, 42, &[1u8, 2, 3][..], true, false)
            ),
            other => panic!("{other:?}"),
        }
        assert!(!read_frame(&mut r, &mut buf).unwrap(), "clean EOF");
    }

    /// Bytes go on the wire as postcard writes a sequence of `u8`: agents
    /// of before `as_bytes` read them alike.
    #[test]
    fn bytes_are_encoded_as_a_sequence_of_u8() {
        /// `Request` as it was: the same variants, bytes as a `Vec<u8>`.
        #[derive(Serialize)]
        #[allow(dead_code)]
        enum Old {
            Call,
            Shutdown,
            Data { req: u64, bytes: Vec<u8> },
        }
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let new = postcard::to_allocvec(&Request::Data {
            req: 9,
            bytes: &bytes,
        })
        .unwrap();
        let old = postcard::to_allocvec(&Old::Data {
            req: 9,
            bytes: bytes.clone(),
        })
        .unwrap();
        assert_eq!(new, old);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut buf = Vec::new();
        let huge = (MAX_FRAME as u32 + 1).to_le_bytes();
        let err = read_frame(&mut &huge[..], &mut buf).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        let short = [5u8, 0, 0, 0, 1];
        let err = read_frame(&mut &short[..], &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_frame(&mut &[1u8, 0][..], &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// The bytes `docs/PROTOCOL.md` documents, one frame of each kind: a
    /// change here is a protocol change (bump `PROTOCOL_VERSION`).
    #[test]
    fn documented_frames_keep_their_bytes() {
        let greet = crate::contract::wire_id("demo::tasks::greet(String,u32)->String");
        assert_eq!(greet, 0x49ec_aec5_fd4a_bdb1);
        let args = [0x02, 0x68, 0x69, 0x03];
        let call = Request::Call {
            req: 1,
            fn_id: greet,
            args: &args,
            input: false,
            output: false,
        };
        let hex = |frame: Vec<u8>| -> String {
            frame
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let frames = [
            (
                encode_frame(&call).unwrap(),
                "12 00 00 00 00 01 b1 fb aa ea df d8 ab f6 49 04 02 68 69 03 00 00",
            ),
            (encode_frame(&Request::Shutdown).unwrap(), "01 00 00 00 01"),
            (
                encode_frame(&Request::Data {
                    req: 1,
                    bytes: b"ab",
                })
                .unwrap(),
                "05 00 00 00 02 01 02 61 62",
            ),
            (
                encode_frame(&Request::End { req: 1 }).unwrap(),
                "02 00 00 00 03 01",
            ),
            (
                encode_frame(&Request::Credit {
                    req: 1,
                    bytes: 524_288,
                })
                .unwrap(),
                "05 00 00 00 04 01 80 80 20",
            ),
            (
                encode_frame(&Request::Cancel { req: 1 }).unwrap(),
                "02 00 00 00 05 01",
            ),
            (
                encode_frame(&Response::Data {
                    req: 1,
                    bytes: b"ab",
                })
                .unwrap(),
                "05 00 00 00 03 01 02 61 62",
            ),
            (
                encode_frame(&Response::Credit {
                    req: 1,
                    bytes: 524_288,
                })
                .unwrap(),
                "05 00 00 00 04 01 80 80 20",
            ),
            (
                encode_frame(&Response::Reply {
                    req: 1,
                    result: Ok("\"hihihi\"".into()),
                })
                .unwrap(),
                "0c 00 00 00 01 01 00 08 22 68 69 68 69 68 69 22",
            ),
            (
                encode_frame(&Response::Reply {
                    req: 2,
                    result: Err(Failure::Error {
                        message: "no".into(),
                        chain: vec!["why".into()],
                    }),
                })
                .unwrap(),
                "0c 00 00 00 01 02 01 00 02 6e 6f 01 03 77 68 79",
            ),
            (
                encode_frame(&Response::Log {
                    level: 2,
                    target: "t".into(),
                    message: "m".into(),
                })
                .unwrap(),
                "06 00 00 00 02 02 01 74 01 6d",
            ),
            (
                encode_frame(&Response::Hello(Hello {
                    protocol: 3,
                    version: "0.1.0".into(),
                    fingerprint: 0x1234,
                    functions: vec![greet],
                    exe_sha256: String::new(),
                    pid: 4242,
                }))
                .unwrap(),
                "17 00 00 00 00 03 05 30 2e 31 2e 30 b4 24 01 b1 fb aa ea df d8 ab f6 49 00 92 21",
            ),
        ];
        for (frame, documented) in frames {
            assert_eq!(hex(frame), documented);
        }
    }

    #[test]
    fn log_levels_round_trip_the_wire() {
        for level in log::Level::iter() {
            assert_eq!(level_from_wire(level as u8), Some(level));
        }
        assert_eq!(level_from_wire(0), None);
        assert_eq!(level_from_wire(9), None);
    }

    #[test]
    fn protocol_version_is_readable_first() {
        let hello = Response::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            version: "x".into(),
            fingerprint: 1,
            functions: vec![],
            exe_sha256: String::new(),
            pid: 1,
        });
        let bytes = postcard::to_allocvec(&hello).unwrap();
        // variant index 0, then the protocol version as a varint
        assert_eq!(&bytes[..2], &[0, PROTOCOL_VERSION as u8]);
    }
}
