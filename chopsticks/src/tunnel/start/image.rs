//! The agent binary as shipped: the executable without its debug sections
//! (`strip.rs`), its SHA-256 (the cache key on the host) and size, and its
//! gzip form, made only when some host needs an upload.
//!
//! Hashing is remembered twice: in this process per path, and across runs in
//! the user's cache directory, keyed by what identifies the file's content
//! (device, inode, size, modification and change times). An unchanged
//! executable is therefore read and hashed once per build, not once per run.
//! A wrong entry cannot run the wrong binary: an upload is checked against
//! the hash on the host, and a change of the file changes its key (a write
//! always moves its change time, which nobody can set back).

use chopsticks_agent::sync::Unpoisoned;
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chopsticks_agent::value::sha256_hex;

use super::native;
use super::strip::without_debug_info;

/// Bumped when what is shipped of a file changes (the stripping): older
/// cache entries then no longer apply.
const SHIPPED_FORMAT: u32 = 2;

/// How many times this process read and hashed an executable.
static HASHED: AtomicU64 = AtomicU64::new(0);

/// How many times this process read and hashed an executable to ship it
/// (for tests and benchmarks: an unchanged one is not hashed again).
pub(crate) fn hashed() -> u64 {
    HASHED.load(Ordering::Relaxed)
}

/// One executable that can serve as an agent, in the form it is shipped.
pub(crate) struct Image {
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of what is shipped.
    pub sha256: String,
    /// Size in bytes of what is shipped.
    pub size: u64,
    /// Whether debug sections are left out.
    strip: bool,
    key: FileKey,
    gzip: OnceLock<Result<Arc<Vec<u8>>, String>>,
    raw: OnceLock<Result<Arc<Vec<u8>>, String>>,
}

/// The images this process knows, by path and whether they are stripped.
type Images = HashMap<(PathBuf, bool), Arc<Image>>;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    fn of(path: &Path) -> io::Result<FileKey> {
        Ok(FileKey::from(&std::fs::metadata(path)?))
    }

    fn from(m: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The name of its entry in the cache directory.
    fn entry(&self, strip: bool) -> String {
        let FileKey {
            dev,
            ino,
            size,
            mtime,
            ctime,
        } = self;
        format!(
            "v{SHIPPED_FORMAT}-{dev:x}-{ino:x}-{size:x}-{}.{}-{}.{}-{}",
            mtime.0,
            mtime.1,
            ctime.0,
            ctime.1,
            if strip { "stripped" } else { "whole" }
        )
    }
}

impl Image {
    /// The image of `path` (without debug sections when `strip`), hashed
    /// only when neither this process nor the cache directory knows it.
    pub(crate) fn of(path: &Path, strip: bool) -> io::Result<Arc<Image>> {
        static IMAGES: OnceLock<Mutex<Images>> = OnceLock::new();
        // The key and, when hashing, the bytes come from one open file: a
        // file replaced meanwhile cannot lend its hash to the other's key.
        let mut file = std::fs::File::open(path)?;
        let key = FileKey::from(&file.metadata()?);
        let images = IMAGES.get_or_init(Default::default);
        // Held while hashing, so that concurrent tunnels hash once.
        let mut images = images.lock().unpoisoned();
        let id = (path.to_owned(), strip);
        if let Some(image) = images.get(&id).filter(|image| image.key == key) {
            return Ok(Arc::clone(image));
        }
        let entry = cache_dir().map(|dir| dir.join(key.entry(strip)));
        let known = entry.as_deref().and_then(read_entry);
        let fresh = known.is_none();
        let (sha256, size) = match known {
            Some(known) => {
                log::debug!("chopsticks: the image of {} is known", path.display());
                known
            }
            None => {
                let start = Instant::now();
                let mut data = Vec::with_capacity(key.size as usize);
                io::Read::read_to_end(&mut file, &mut data)?;
                let shipped = ship_form(data, strip);
                let (sha256, size) = hash(&shipped)?;
                HASHED.fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "chopsticks: hashed {} ({size} bytes shipped) in {:?}",
                    path.display(),
                    start.elapsed()
                );
                if let Some(entry) = &entry {
                    // A cache that cannot be written only costs a hash next run.
                    let _ = write_entry(entry, &sha256, size);
                }
                (sha256, size)
            }
        };
        let image = Arc::new(Image {
            path: path.to_owned(),
            sha256,
            size,
            strip,
            key,
            gzip: OnceLock::new(),
            raw: OnceLock::new(),
        });
        images.insert(id, Arc::clone(&image));
        // Unoptimised, the system's gzip compresses on demand: a near host
        // (the usual test machine of a debug build) takes no compression.
        if fresh && !native::UNOPTIMISED {
            // A file this process hashed is new (a rebuild): no host has it
            // yet, and the first that asks would wait for its compression.
            // Compress it now, while ssh connects. (If no thread can start,
            // the first upload compresses, as it would anyway.)
            let early = Arc::clone(&image);
            let _ = std::thread::Builder::new()
                .name("chopsticks-gzip".into())
                .spawn(move || drop(early.gzip()));
        }
        Ok(image)
    }

    /// The image as it is shipped uncompressed, made on first use.
    pub(crate) fn raw(&self) -> Result<Arc<Vec<u8>>, String> {
        self.raw
            .get_or_init(|| {
                self.unchanged()?;
                shipped(&self.path, self.strip)
                    .map(Arc::new)
                    .map_err(|e| format!("cannot read the agent {}: {e}", self.path.display()))
            })
            .clone()
    }

    /// Refuses a file that changed since it was hashed.
    fn unchanged(&self) -> Result<(), String> {
        if FileKey::of(&self.path).ok() != Some(self.key) {
            return Err(format!(
                "the agent binary {} changed while connecting; run again",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// The gzip-compressed image, made on first use.
    pub(crate) fn gzip(&self) -> Result<Arc<Vec<u8>>, String> {
        self.gzip
            .get_or_init(|| {
                let what = self.path.display();
                self.unchanged()?;
                let compress = || -> io::Result<Vec<u8>> {
                    let data = shipped(&self.path, self.strip)?;
                    if native::UNOPTIMISED {
                        if let Some(gz) = native::gzip(&data, NATIVE_LEVEL) {
                            return Ok(gz);
                        }
                    }
                    let mut gz = flate2::write::GzEncoder::new(
                        Vec::with_capacity(data.len() / 3),
                        flate2::Compression::new(LEVEL),
                    );
                    gz.write_all(&data)?;
                    gz.finish()
                };
                compress()
                    .map(Arc::new)
                    .map_err(|e| format!("cannot compress the agent {what}: {e}"))
            })
            .clone()
    }
}

/// The gzip level of the compressor built in: unoptimised code (a debug
/// build without the system's `gzip`) takes level 3, which keeps the first
/// run after a rebuild bound by the upload (the 2.4 MB test fixture: 157 ms
/// and 797 KB, against 362 ms and 771 KB at level 6, or 129 ms and 937 KB
/// at level 1).
const LEVEL: u32 = if native::UNOPTIMISED { 3 } else { 6 };

/// The level of the system's `gzip`, which only unoptimised builds use: a
/// debug agent of 25 MB takes 0.7 s at level 1 and 2.5 s at 6, for 14%
/// more bytes.
const NATIVE_LEVEL: u32 = 1;

/// The SHA-256 and size of what is shipped: by the system's `sha256sum` in
/// unoptimised code (where ours hashes a few MB/s), else by ours.
fn hash(shipped: &[u8]) -> io::Result<(String, u64)> {
    match native::UNOPTIMISED
        .then(|| native::sha256(shipped))
        .flatten()
    {
        Some(sha256) => Ok((sha256, shipped.len() as u64)),
        None => sha256_hex(shipped),
    }
}

/// What is shipped of the file at `path`.
fn shipped(path: &Path, strip: bool) -> io::Result<Vec<u8>> {
    Ok(ship_form(std::fs::read(path)?, strip))
}

/// What is shipped of a file's bytes.
fn ship_form(data: Vec<u8>, strip: bool) -> Vec<u8> {
    if strip {
        without_debug_info(&data).unwrap_or(data)
    } else {
        data
    }
}

/// Where hashes of shipped images are remembered: `chopsticks/shipped` in
/// `$XDG_CACHE_HOME` or `~/.cache`, private to the user. `None` when there
/// is no such place that is ours.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let dir = base.join("chopsticks").join("shipped");
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    // SAFETY: geteuid cannot fail.
    let ours = meta.uid() == unsafe { libc::geteuid() };
    (meta.is_dir() && ours && meta.mode() & 0o077 == 0).then_some(dir)
}

/// A remembered `(sha256, size)`, if the entry is well-formed.
fn read_entry(entry: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(entry).ok()?;
    let (sha256, size) = text.trim_end().split_once(' ')?;
    let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    Some((sha256.to_ascii_lowercase(), size.parse().ok()?)).filter(|_| hex)
}

/// Entries kept in the cache directory; the oldest go when it holds more.
const KEEP_ENTRIES: usize = 256;

/// Remembers `(sha256, size)`: written beside, then renamed into place. The
/// directory keeps the newest [`KEEP_ENTRIES`] (one per build and binary).
fn write_entry(entry: &Path, sha256: &str, size: u64) -> io::Result<()> {
    if let Some(dir) = entry.parent() {
        prune(dir);
    }
    let temp = entry.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = writeln!(file, "{sha256} {size}").and_then(|()| std::fs::rename(&temp, entry));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Removes the oldest entries of `dir` beyond [`KEEP_ENTRIES`].
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() < KEEP_ENTRIES {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() + 1 - KEEP_ENTRIES] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_are_checked_before_they_are_believed() {
        let dir = std::env::temp_dir().join(format!("chopsticks-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let entry = dir.join("e");
        let hash = "ab".repeat(32);
        write_entry(&entry, &hash, 42).unwrap();
        assert_eq!(read_entry(&entry), Some((hash, 42)));
        for bad in ["", "zz 1", "abc 12", &format!("{} x", "ab".repeat(32))] {
            std::fs::write(&entry, bad).unwrap();
            assert_eq!(read_entry(&entry), None, "{bad:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_touched_file_has_a_new_key_and_the_same_image() {
        let dir = std::env::temp_dir().join(format!("chopsticks-touch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent");
        std::fs::write(&path, b"not an elf file").unwrap();
        let first = Image::of(&path, true).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"not an elf file").unwrap();
        assert_ne!(
            FileKey::of(&path).unwrap(),
            first.key,
            "a write moves the key"
        );
        let again = Image::of(&path, true).unwrap();
        assert_eq!(
            (again.sha256.as_str(), again.size),
            (first.sha256.as_str(), 15)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
