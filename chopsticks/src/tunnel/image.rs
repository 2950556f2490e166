//! The agent binary shipped over SSH: its SHA-256 (the cache key on the
//! remote), computed once per process, and its gzip-compressed bytes,
//! made once and only when some host needs an upload.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sha2::{Digest, Sha256};

/// One executable that can serve as an agent.
pub(crate) struct Image {
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    gzip: OnceLock<Result<Arc<Vec<u8>>, String>>,
}

impl Image {
    /// The image of `path`, hashed on first use and shared afterwards.
    pub(crate) fn of(path: &Path) -> io::Result<Arc<Image>> {
        static IMAGES: OnceLock<Mutex<HashMap<PathBuf, Arc<Image>>>> = OnceLock::new();
        let images = IMAGES.get_or_init(Default::default);
        // Held while hashing, so that concurrent tunnels hash once.
        let mut images = images.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(image) = images.get(path) {
            return Ok(Arc::clone(image));
        }
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let image = Arc::new(Image {
            path: path.to_owned(),
            sha256: hex(&hasher.finalize()),
            size,
            gzip: OnceLock::new(),
        });
        images.insert(path.to_owned(), Arc::clone(&image));
        Ok(image)
    }

    /// The gzip-compressed file, made on first use.
    pub(crate) fn gzip(&self) -> Result<Arc<Vec<u8>>, String> {
        self.gzip
            .get_or_init(|| {
                let compress = || -> io::Result<Vec<u8>> {
                    let data = std::fs::read(&self.path)?;
                    let mut gz = flate2::write::GzEncoder::new(
                        Vec::with_capacity(data.len() / 3),
                        flate2::Compression::new(6),
                    );
                    gz.write_all(&data)?;
                    gz.finish()
                };
                compress()
                    .map(Arc::new)
                    .map_err(|e| format!("cannot compress the agent {}: {e}", self.path.display()))
            })
            .clone()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
