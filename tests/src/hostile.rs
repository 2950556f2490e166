//! What the `hostile` fixture, a fake agent, writes once it was called:
//! pieces of the protocol, well and badly formed, then its end.

use serde::{Deserialize, Serialize};

/// One piece of what the fake agent writes after a call arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Piece {
    /// These bytes, as they are.
    Bytes(Vec<u8>),
    /// These bytes as one frame (a length, then them).
    Frame(Vec<u8>),
    /// A frame header announcing this length, and nothing after it.
    Announce(u32),
    /// A reply to the call, or to request `other`: JSON, or an error.
    Reply {
        /// Another request ID than the call's.
        other: Option<u64>,
        /// The JSON text of the value, or the error's message.
        result: Result<String, String>,
    },
    /// A log record.
    Log {
        /// Its level on the wire (1 = error ... 5 = trace).
        level: u8,
        /// Its target.
        target: String,
        /// Its message.
        message: String,
    },
    /// Output stream bytes for the call, or for request `other`.
    Data {
        /// Another request ID than the call's.
        other: Option<u64>,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Input stream credit for the call, or for request `other`.
    Credit {
        /// Another request ID than the call's.
        other: Option<u64>,
        /// How many bytes.
        bytes: u64,
    },
    /// A second hello.
    Hello,
}

/// All the fake agent does after the call arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// What it writes.
    pub pieces: Vec<Piece>,
    /// Whether it then exits (or stalls, reading on, until killed).
    pub exit: bool,
}

impl Plan {
    /// The plan as one command-line argument.
    pub fn to_arg(&self) -> String {
        let bytes = postcard::to_allocvec(self).expect("a plan encodes");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The plan [`Plan::to_arg`] made.
    pub fn from_arg(arg: &str) -> Option<Plan> {
        let bytes: Option<Vec<u8>> = (0..arg.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(arg.get(i..i + 2)?, 16).ok())
            .collect();
        postcard::from_bytes(&bytes?).ok()
    }
}
