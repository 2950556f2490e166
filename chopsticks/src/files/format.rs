//! The stream a transfer sends, the same in both directions: a sequence of
//! items, each a 4-byte little-endian length and a postcard-encoded
//! [`Item`]; a file's content follows its item, and its SHA-256 follows the
//! content. Paths are bytes (Unix paths need not be UTF-8), relative to
//! the transfer's root, whose own item has an empty path.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The longest item (a path, a link target): far above any real path.
const MAX_ITEM: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Item {
    /// A directory, created before what is inside it.
    Dir { path: Vec<u8>, mode: u32 },
    /// A regular file: `size` bytes of content follow, then [`Item::Sum`].
    File { path: Vec<u8>, mode: u32, size: u64 },
    /// A file the receiver has with this content (of SHA-256 `sum`)
    /// already: only its mode is applied.
    Same {
        path: Vec<u8>,
        mode: u32,
        sum: [u8; 32],
    },
    /// A symbolic link, sent as a link.
    Symlink { path: Vec<u8>, target: Vec<u8> },
    /// The SHA-256 of the content just sent.
    Sum([u8; 32]),
    /// The end of the transfer.
    End,
}

pub(crate) fn write_item(w: &mut impl Write, item: &Item) -> io::Result<()> {
    let bytes = postcard::to_extend(item, vec![0u8; 4]).map_err(io::Error::other)?;
    let len = (bytes.len() - 4) as u32;
    let mut bytes = bytes;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    w.write_all(&bytes)
}

/// Reads the next item.
///
/// # Errors
/// A stream that ends, or breaks off, before it: the sender failed or the
/// call ended (its own error says why).
pub(crate) fn read_item(r: &mut impl Read) -> io::Result<Item> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_ITEM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a transfer item of {len} bytes: the stream is corrupt"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    postcard::from_bytes(&buf).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an undecodable transfer item: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_with_bytes_paths() {
        let items = [
            Item::Dir {
                path: vec![],
                mode: 0o755,
            },
            Item::File {
                path: b"caf\xe9".to_vec(),
                mode: 0o600,
                size: 3,
            },
            Item::Sum([7; 32]),
            Item::Symlink {
                path: b"l".to_vec(),
                target: b"../x".to_vec(),
            },
            Item::End,
        ];
        let mut stream = Vec::new();
        for item in &items {
            write_item(&mut stream, item).unwrap();
        }
        let mut r = &stream[..];
        for item in &items {
            assert_eq!(&read_item(&mut r).unwrap(), item);
        }
        let err = read_item(&mut r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
