//! Helpers for the code `#[remote]` generates: argument decoding, return
//! encoding and error conversion. Not public API.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wire::Failure;

/// The lower-case hex SHA-256 of everything `reader` yields, and its length:
/// how an agent binary is named in the SSH cache and checked there.
///
/// # Errors
/// When reading fails.
pub fn sha256_hex(mut reader: impl std::io::Read) -> std::io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut reader, &mut hasher)?;
    let hex = hasher.finalize().iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    });
    Ok((hex, size))
}

/// Decodes a postcard-encoded argument tuple.
///
/// # Errors
/// [`Failure::BadArgs`] when the bytes do not match the parameter types.
pub fn decode_args<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    postcard::from_bytes(bytes).map_err(|e| Failure::BadArgs {
        message: e.to_string(),
    })
}

/// Encodes a return value as JSON, in at most a frame's worth of memory:
/// a value whose JSON outgrows [`MAX_FRAME`](crate::wire::MAX_FRAME) is
/// refused as soon as it does, not after it was written out whole.
///
/// # Errors
/// [`Failure::BadReturn`] when serde_json refuses the value (a map with
/// non-string keys, a failing `Serialize` impl) or its JSON is larger than
/// a frame.
pub fn encode_return<T: Serialize + ?Sized>(value: &T) -> Result<String, Failure> {
    let mut out = Bounded(Vec::new());
    match serde_json::to_writer(&mut out, value) {
        // serde_json writes valid UTF-8.
        Ok(()) => Ok(String::from_utf8(out.0).unwrap_or_default()),
        Err(_) if out.0.len() >= crate::wire::MAX_FRAME => Err(Failure::BadReturn {
            message: format!(
                "the result's JSON is larger than the frame limit of {} bytes: send large \
                 data through the call's output stream (`Tunnel::call_with_output`, \
                 `agent::stream::output`) or a file (`Tunnel::fetch`)",
                crate::wire::MAX_FRAME
            ),
        }),
        Err(e) => Err(Failure::BadReturn {
            message: e.to_string(),
        }),
    }
}

/// A buffer that refuses to grow past a frame.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > crate::wire::MAX_FRAME {
            self.0
                .extend_from_slice(&buf[..crate::wire::MAX_FRAME - self.0.len()]);
            return Err(std::io::Error::other("over the frame limit"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A return type whose `Err` becomes a remote error: `Result<T, E: Display>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`, which `#[remote(fallible)]` needs",
    label = "not a `Result<T, E>`",
    note = "`fallible` is for aliases of `Result<T, E>` whose name is not `Result`; \
            remove it to return this type as it is"
)]
pub trait Fallible {
    /// The value a successful call returns.
    type Ok;
    /// The error type.
    type Err: Display;
    /// Into a plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E: Display> Fallible for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// Wraps an error for autoref-based dispatch: an `std::error::Error` gives its
/// source chain ([`ViaError`]); anything else `Display` gives its alternate
/// (`{:#}`) form, which for `anyhow::Error` includes the causes ([`ViaDisplay`]).
#[derive(Debug)]
pub struct ErrWrap<'a, E>(pub &'a E);

/// Converts an `std::error::Error` with its source chain.
pub trait ViaError {
    /// The failure to send.
    fn remote_failure(&self) -> Failure;
}

impl<E: std::error::Error> ViaError for ErrWrap<'_, E> {
    fn remote_failure(&self) -> Failure {
        let mut chain = Vec::new();
        let mut source = self.0.source();
        while let Some(err) = source {
            chain.push(err.to_string());
            source = err.source();
        }
        Failure::Error {
            message: self.0.to_string(),
            chain,
        }
    }
}

/// Converts an error that is only `Display`.
pub trait ViaDisplay {
    /// The failure to send.
    fn remote_failure(&self) -> Failure;
}

impl<E: Display> ViaDisplay for &ErrWrap<'_, E> {
    fn remote_failure(&self) -> Failure {
        Failure::Error {
            message: format!("{:#}", self.0),
            chain: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading config")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    // The borrow is what selects the impl (autoref dispatch).
    #[allow(clippy::needless_borrow)]
    #[test]
    fn std_errors_keep_their_source_chain() {
        let err = Outer(std::io::Error::other("disk on fire"));
        let failure = (&ErrWrap(&err)).remote_failure();
        assert_eq!(
            failure,
            Failure::Error {
                message: "reading config".into(),
                chain: vec!["disk on fire".into()]
            }
        );
    }

    #[allow(clippy::needless_borrow)]
    #[test]
    fn display_only_errors_use_their_message() {
        let err = String::from("plain text");
        let failure = (&ErrWrap(&err)).remote_failure();
        assert_eq!(
            failure,
            Failure::Error {
                message: "plain text".into(),
                chain: vec![]
            }
        );
    }

    #[test]
    fn sha256_of_a_stream() {
        let (hex, size) = sha256_hex(&b"abc"[..]).unwrap();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(size, 3);
    }
}
