//! The agent's one writer to the controller: whole frames, one at a time.

use crate::sync::Unpoisoned;
use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

/// The protocol's output; replies and log records share it.
pub(crate) struct Frames(Mutex<File>);

impl Frames {
    pub(crate) fn new(file: File) -> Frames {
        Frames(Mutex::new(file))
    }

    /// Writes `bytes` (whole frames) and flushes. A failed write means the
    /// controller is gone; the reader then sees EOF and the agent ends.
    pub(crate) fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = self.0.lock().unpoisoned();
        out.write_all(bytes)?;
        out.flush()
    }
}
