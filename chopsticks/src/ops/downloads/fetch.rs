//! The controller's downloads: each URL (with its checksum) fetched once
//! per process into a private temporary file (mode 600, removed by the
//! janitor when the process ends, however it ends), which every host's
//! put then reads. A fetch that failed is not tried again by the process:
//! the other hosts of a group fail at once with the same error, instead
//! of each waiting up to the time limit in turn.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{tool, Download};
use crate::ops::OpError;

/// A download on this machine.
#[derive(Debug)]
pub(super) struct Fetched {
    pub path: PathBuf,
    pub sha256: String,
}

/// One slot per URL and checksum: the first caller fetches while later
/// ones (other hosts of a group) wait for it; then it holds the download,
/// or why it failed.
type Slot = Arc<Mutex<Option<Result<Arc<Fetched>, String>>>>;

/// The slots, by URL and checksum.
type Slots = Mutex<HashMap<(String, Option<String>), Slot>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Mutex::default)
}

/// The spec's URL fetched on this machine, once per process: checked
/// against its checksum, when it has one. A failed fetch is kept too: the
/// next caller gets its error without trying again.
///
/// # Errors
/// As [`tool::fetch_into`]; a temporary file that cannot be made; the same
/// error as the first try's, for later callers.
pub(super) fn fetched(spec: &Download) -> Result<Arc<Fetched>, OpError> {
    let key = (spec.url.clone(), spec.sha256.clone());
    let slot = {
        let mut slots = slots().lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(key).or_default())
    };
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    match &*slot {
        Some(Ok(done)) => return Ok(Arc::clone(done)),
        Some(Err(message)) => {
            return Err(spec.fail(format!(
                "{message} (this process tried once already and does not try again; run \
                 it again once the URL answers)"
            )))
        }
        None => {}
    }
    match fetch(spec) {
        Ok(done) => {
            let done = Arc::new(done);
            *slot = Some(Ok(Arc::clone(&done)));
            Ok(done)
        }
        Err(e) => {
            *slot = Some(Err(e.message.clone()));
            Err(e)
        }
    }
}

/// Fetches the URL into a new private temporary file.
fn fetch(spec: &Download) -> Result<Fetched, OpError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("chopsticks-download-{}-{n}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            spec.fail(format!(
                "cannot create {} on this machine for the download: {}",
                path.display(),
                crate::files::describe(&e)
            ))
        })?;
    if let Err(e) = chopsticks_agent::janitor::watch(&path) {
        log::debug!("chopsticks: {} is not watched: {e}", path.display());
    }
    let fetched = tool::fetch_into(
        spec,
        &tool::controller(spec),
        &mut file,
        spec.sha256.as_deref(),
    );
    match fetched {
        Ok((sha256, _)) => Ok(Fetched { path, sha256 }),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            chopsticks_agent::janitor::forget(&path);
            Err(e)
        }
    }
}
