//! A controller whose host writes terminal escapes on stderr and in a log
//! record: what reaches this program's stderr must carry none of them.
//! Prints `ok` on stdout.

use chopsticks::Tunnel;
use chopsticks_tests::{log_info, say};

/// Prints every record on stderr, as a tool's logger would.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!("LOG {}: {}", record.target(), record.args());
    }
    fn flush(&self) {}
}

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    static LOGGER: Logger = Logger;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    let t = Tunnel::local()?;
    // Colour, a title change, a bell, a cursor move and a C1 CSI, with a tab.
    let hostile =
        "red:\x1b[31mX\x1b[0m title:\x1b]0;pwned\x07 bell:\x07 up:\x1b[2A csi:\u{9b}2J tab:\tend";
    t.call(say, (hostile.to_owned(),))?;
    t.call(log_info, (hostile.to_owned(),))?;
    t.close();
    println!("ok");
    Ok(())
}
