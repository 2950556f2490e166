//! The agent binary shipped over SSH: its SHA-256 (the cache key on the
//! remote), computed once per process, and its gzip-compressed bytes,
//! made once and only when some host needs an upload.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chopsticks_agent::value::sha256_hex;

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
        let (sha256, size) = sha256_hex(std::fs::File::open(path)?)?;
        let image = Arc::new(Image {
            path: path.to_owned(),
            sha256,
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
