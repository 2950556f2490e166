//! `log` records made on the agent travel to the controller as
//! [`Response::Log`] frames, where they enter the controller's own logger
//! with the host attached.

use std::sync::Arc;

use crate::wire::{self, Response};
use crate::workers::Workers;

/// Set by the controller to its `log::max_level()` (0 = off ... 5 = trace),
/// so the agent does not format records nobody wants.
pub const ENV_LOG_LEVEL: &str = "CHOPSTICKS_LOG_LEVEL";

struct Forward(Arc<Workers>);

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = Response::Log {
            level: record.level() as u8,
            target: record.target().to_owned(),
            message: record.args().to_string(),
        };
        // A record too large for a frame, or a controller that is gone, is
        // dropped: logging must not fail a call.
        if let Ok(frame) = wire::encode_frame(&message) {
            let _ = self.0.send(&frame);
        }
    }

    fn flush(&self) {}
}

/// A `log::Level` from its number on the wire (1 = error ... 5 = trace,
/// as `level as u8` gives); `None` for 0 (off) and unknown numbers.
pub fn level_from_wire(level: u8) -> Option<log::Level> {
    log::Level::iter().find(|l| *l as u8 == level)
}

/// Installs the forwarding logger, unless the program set one already.
pub fn install(workers: &Arc<Workers>, level: u8) {
    let filter = level_from_wire(level).map_or(log::LevelFilter::Off, |l| l.to_level_filter());
    if log::set_boxed_logger(Box::new(Forward(Arc::clone(workers)))).is_ok() {
        log::set_max_level(filter);
    }
}
