//! Reading an archive, whatever its format (told by its first bytes): each
//! entry handed to a visitor with its content, within the spec's bounds.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    /// A hard link to an earlier entry (its path in the archive).
    Hardlink(PathBuf),
    /// A device node, fifo or other special file: refused.
    Special,
}

/// One entry: its path as the archive names it, kind and mode.
#[derive(Debug)]
pub(super) struct Item {
    pub path: PathBuf,
    pub kind: Kind,
    pub mode: u32,
}

/// The formats, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Tar,
    Gzip,
    Xz,
    Zstd,
    Zip,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Gzip => "tar.gz",
            Format::Xz => "tar.xz",
            Format::Zstd => "tar.zst",
            Format::Zip => "zip",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The format of `file`, from its first bytes.
pub(super) fn format(file: &mut File) -> io::Result<Option<Format>> {
    let mut head = [0u8; 262];
    file.seek(SeekFrom::Start(0))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            m => n += m,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let head = &head[..n];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    })
}

/// A reader that fails once more than `left` bytes came through it: a
/// decompression bomb stops here.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| io::Error::other(super::TOO_LARGE))?;
        Ok(n)
    }
}

/// The visitor: an entry and its content (empty but for files).
pub(super) type Visit<'a> = dyn FnMut(Item, &mut dyn Read) -> Result<(), String> + 'a;

/// Hands every entry of `file` (a `format` archive) to `visit`, in order;
/// the decompressed content by `max_bytes` (a tar's stream by that and
/// its headers), a zip's directory by `max_entries`.
///
/// # Errors
/// The archive is damaged or over its bounds, or `visit` failed (its
/// message as it is).
pub(super) fn entries(
    file: &File,
    format: Format,
    max_bytes: u64,
    max_entries: u64,
    visit: &mut Visit<'_>,
) -> Result<(), String> {
    // Each entry's header and padding, and the GNU and pax extensions'.
    let cap = max_bytes.saturating_add(max_entries.saturating_mul(3 * 1024) + (1 << 20));
    let mut file = file.try_clone().map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let plain = BufReader::new(file);
    match format {
        Format::Zip => zip_entries(plain.into_inner(), max_bytes, max_entries, visit),
        Format::Tar => tar_entries(
            Capped {
                inner: plain,
                left: cap,
            },
            visit,
        ),
        Format::Gzip => tar_entries(
            Capped {
                inner: flate2::read::MultiGzDecoder::new(plain),
                left: cap,
            },
            visit,
        ),
        Format::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(plain)
                .map_err(|e| format!("not a zstd stream: {e}"))?;
            tar_entries(
                Capped {
                    inner: decoder,
                    left: cap,
                },
                visit,
            )
        }
        Format::Xz => xz_entries(plain, cap, visit),
    }
}

/// An xz stream's tar: the pure-Rust decoder writes into a pipe on a
/// thread of its own, the tar reader reads the other end.
fn xz_entries(mut plain: BufReader<File>, cap: u64, visit: &mut Visit<'_>) -> Result<(), String> {
    let (reader, mut writer) = io::pipe().map_err(|e| e.to_string())?;
    let decoder = std::thread::spawn(move || {
        lzma_rs::xz_decompress(&mut plain, &mut writer).map_err(|e| e.to_string())
    });
    let read = tar_entries(
        Capped {
            inner: reader,
            left: cap,
        },
        visit,
    );
    // The reader is closed: a decoder still writing stops (EPIPE).
    let decoded = decoder
        .join()
        .unwrap_or_else(|_| Err("the xz decoder failed".to_owned()));
    match (read, decoded) {
        (Ok(()), Ok(())) => Ok(()),
        // The tar's own error says more (a bound, a refused entry) unless
        // the xz stream itself is damaged.
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(_)) if !e.contains("unexpected end") => Err(e),
        (_, Err(e)) if e.contains("Broken pipe") => Ok(()),
        (_, Err(e)) => Err(format!("not a valid xz stream: {e}")),
    }
}

fn tar_entries(stream: impl Read, visit: &mut Visit<'_>) -> Result<(), String> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let link = || -> Result<PathBuf, String> {
            match entry.link_name() {
                Ok(Some(target)) => Ok(target.into_owned()),
                _ => Err("a link entry without a target".to_owned()),
            }
        };
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(link()?),
            tar::EntryType::Link => Kind::Hardlink(link()?),
            tar::EntryType::XGlobalHeader => continue,
            _ => Kind::Special,
        };
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        visit(Item { path, kind, mode }, &mut entry)?;
    }
    Ok(())
}

fn zip_entries(
    file: File,
    cap: u64,
    max_entries: u64,
    visit: &mut Visit<'_>,
) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a valid zip: {e}"))?;
    if archive.len() as u64 > max_entries {
        return Err(format!(
            "it has {} entries, more than {max_entries}: raise .max_entries(..)",
            archive.len()
        ));
    }
    let mut left = cap;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let path = PathBuf::from(entry.name());
        let mode = entry.unix_mode().unwrap_or(0o644);
        let (kind, mut entry) = if entry.is_dir() {
            (Kind::Dir, entry)
        } else if entry.is_symlink() {
            let mut target = Vec::new();
            let mut entry = entry;
            (&mut entry)
                .take(4096)
                .read_to_end(&mut target)
                .map_err(|e| e.to_string())?;
            let target = std::ffi::OsString::from(String::from_utf8_lossy(&target).into_owned());
            (Kind::Symlink(target.into()), entry)
        } else if mode & 0o170000 != 0 && mode & 0o170000 != 0o100000 {
            (Kind::Special, entry)
        } else {
            (Kind::File, entry)
        };
        let mut content = Capped {
            inner: &mut entry,
            left,
        };
        visit(Item { path, kind, mode }, &mut content)?;
        left = content.left;
    }
    Ok(())
}
