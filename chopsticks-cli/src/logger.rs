//! The records the hosts log (and the tool's own), on stderr, for `-v`
//! (info) and `-vv` (debug); installed only when the tool has no logger.

use std::io::Write;

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "{:<5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Shows records up to info (`verbose` 1) or debug (2 and more) on stderr,
/// unless the program installed a logger of its own.
pub(crate) fn install(verbose: u8) {
    static LOGGER: Stderr = Stderr;
    if verbose == 0 {
        return;
    }
    if log::set_logger(&LOGGER).is_ok() || log::max_level() == log::LevelFilter::Off {
        let level = match verbose {
            1 => log::LevelFilter::Info,
            _ => log::LevelFilter::Debug,
        };
        log::set_max_level(level);
    }
}
