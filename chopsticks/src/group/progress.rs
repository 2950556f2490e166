//! A one-line progress display for group work, on stderr where it takes
//! terminal controls (`crate::terminal`); nothing otherwise. (Hand-written: a bar crate would add half a
//! dozen dependencies to a binary that ships itself.)

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Progress {
    enabled: bool,
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    /// A display for `total` hosts doing `what`; shown only when `wanted`,
    /// progress lines are allowed (stderr is a terminal, or `--color
    /// always`; not quiet) and there is more than one host.
    pub(crate) fn new(what: &'static str, total: usize, wanted: bool) -> Progress {
        Progress {
            enabled: wanted && total > 1 && crate::terminal::progress_allowed(),
            what,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// One more host finished.
    pub(crate) fn host_done(&self, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failed = self.failed.fetch_add(usize::from(!ok), Ordering::Relaxed) + usize::from(!ok);
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{} [{done}/{}] {} ok, {failed} failed",
                self.what,
                self.total,
                done - failed
            );
            let _ = err.flush();
        }
    }

    /// Clears the line.
    pub(crate) fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }

    #[cfg(test)]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }
}
