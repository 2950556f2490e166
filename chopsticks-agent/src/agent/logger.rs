//! `log` records made on the agent travel to the controller as
//! [`Response::Log`] frames, where they enter the controller's own logger
//! with the host attached.

use std::sync::Arc;

use super::output::Frames;
use crate::wire::{self, Response};

struct Forward(Arc<Frames>);

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

/// Installs the forwarding logger at `level` (the wire's number), unless
/// the program set a logger already.
pub(super) fn install(output: &Arc<Frames>, level: u8) {
    let filter =
        wire::level_from_wire(level).map_or(log::LevelFilter::Off, |l| l.to_level_filter());
    if log::set_boxed_logger(Box::new(Forward(Arc::clone(output)))).is_ok() {
        log::set_max_level(filter);
    }
}
