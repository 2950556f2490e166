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

/// Installs the forwarding logger, unless the program set one already.
pub fn install(workers: &Arc<Workers>, level: u8) {
    let filter = match level {
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        5 => log::LevelFilter::Trace,
        _ => log::LevelFilter::Off,
    };
    if log::set_boxed_logger(Box::new(Forward(Arc::clone(workers)))).is_ok() {
        log::set_max_level(filter);
    }
}
