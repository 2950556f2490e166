//! Reading an archive, whatever its format (told by its first bytes): each
//! entry handed to a visitor with its content, within the spec's bounds.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use super::tree::{bounded, MAX_PATH};

/// The most a tar may hold between two entries: the next one's header,
/// GNU long name and long link name, pax extensions. The tar reader keeps
/// a long name or pax extension whole in memory before it hands the entry
/// over; this bounds what it keeps.
const HEADERS: u64 = 1 << 20;

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

/// A reader that fails once more than `left` bytes came through it since
/// `left` was last set: the headers between two entries.
struct Between<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Between<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let left = self.left.get().checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "an entry's headers (long names, pax extensions) take more than {HEADERS} \
                 bytes: such archives are refused"
            ))
        })?;
        self.left.set(left);
        Ok(n)
    }
}

/// A link's target: not empty, within [`MAX_PATH`].
fn target(bytes: &[u8]) -> Result<PathBuf, String> {
    bounded(bytes)?;
    if bytes.is_empty() || bytes.contains(&0) {
        return Err("a link entry without a target".to_owned());
    }
    Ok(OsStr::from_bytes(bytes).into())
}

fn tar_entries(stream: impl Read, visit: &mut Visit<'_>) -> Result<(), String> {
    let left = Rc::new(Cell::new(HEADERS));
    let mut archive = tar::Archive::new(Between {
        inner: stream,
        left: Rc::clone(&left),
    });
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        // The content is bounded by the stream's cap, not by HEADERS.
        left.set(u64::MAX);
        tar_entry(&mut entry, visit)?;
        // Read to its end here, so that what comes before the next entry
        // is its headers alone.
        io::copy(&mut entry, &mut io::sink()).map_err(|e| e.to_string())?;
        left.set(HEADERS);
    }
    Ok(())
}

fn tar_entry<R: Read>(entry: &mut tar::Entry<'_, R>, visit: &mut Visit<'_>) -> Result<(), String> {
    // Its paths bounded before anything else is done with them.
    bounded(&entry.path_bytes())?;
    let link = entry.link_name_bytes();
    let link = || match link.as_deref() {
        Some(bytes) => target(bytes),
        None => Err("a link entry without a target".to_owned()),
    };
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644);
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link()?),
        tar::EntryType::Link => Kind::Hardlink(link()?),
        tar::EntryType::XGlobalHeader => return Ok(()),
        _ => Kind::Special,
    };
    let path = entry.path().map_err(|e| e.to_string())?.into_owned();
    visit(Item { path, kind, mode }, entry)
}

/// A zip's central directory is read whole by the zip reader before any
/// entry: its size is the archive's, and each name is at most 64 KiB (the
/// format's field), bounded again by [`clean`](super::tree::clean).
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
            let mut bytes = Vec::new();
            let mut entry = entry;
            (&mut entry)
                .take(MAX_PATH as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())?;
            (Kind::Symlink(target(&bytes)?), entry)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of `bytes` (a `format` archive), or the first error.
    fn read(bytes: Vec<u8>, format: Format) -> Result<Vec<Item>, String> {
        let path = std::env::temp_dir().join(format!(
            "cs-archive-read-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut items = Vec::new();
        entries(&file, format, 1 << 30, 1000, &mut |item, _| {
            items.push(item);
            Ok(())
        })
        .map(|()| items)
    }

    /// The error of an archive that must be refused.
    fn refused(read: Result<Vec<Item>, String>) -> String {
        match read {
            Ok(items) => panic!("not refused ({} entries)", items.len()),
            Err(e) => e,
        }
    }

    fn tar_of(path: &str, target: Option<&str>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        match target {
            Some(to) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, path, to).unwrap();
            }
            None => b.append_data(&mut h, path, &[][..]).unwrap(),
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_long_name_is_refused_before_the_tar_reader_keeps_it_whole() {
        let huge = "n/".repeat(1 << 20);
        let e = refused(read(tar_of(&huge, None), Format::Tar));
        assert!(e.contains("headers") && e.contains("refused"), "{e}");
        let e = refused(read(tar_of("l", Some(&huge)), Format::Tar));
        assert!(e.contains("headers"), "{e}");
        // Long, within the bound of headers: refused by the path's own.
        let long = "n/".repeat(3000);
        let e = refused(read(tar_of(&long, None), Format::Tar));
        assert!(e.contains("6000 bytes, longer than 4096"), "{e}");
        let e = refused(read(tar_of("l", Some(&long)), Format::Tar));
        assert!(e.contains("longer than 4096"), "{e}");
        let items = read(tar_of("n/".repeat(2000).as_str(), None), Format::Tar).unwrap();
        assert_eq!(items[0].path.as_os_str().len(), 4000);
    }

    #[test]
    fn a_zip_link_target_is_bounded_not_cut() {
        use zip::write::{SimpleFileOptions, ZipWriter};
        let mut z = ZipWriter::new(io::Cursor::new(Vec::new()));
        z.add_symlink("l", "t/".repeat(3000), SimpleFileOptions::default())
            .unwrap();
        let bytes = z.finish().unwrap().into_inner();
        let e = refused(read(bytes, Format::Zip));
        assert!(e.contains("longer than 4096"), "{e}");
    }
}
