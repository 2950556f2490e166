//! What this program's output may do to a terminal, decided in one place:
//! whether the `[host]` prefixes of remote stderr, the progress line of
//! group work and a kit's lines and recap carry colours and terminal
//! controls, and whether the progress line is shown at all. A kit's
//! `--color` and `-q` set it; `NO_COLOR` and the streams decide the rest.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Whether output carries colours (and, on stderr, the progress line's
/// terminal controls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set (the default).
    #[default]
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether what goes to a stream carries colours: `Always`, `Never`,
    /// or (`Auto`) when the stream is a `terminal` and `NO_COLOR` is not
    /// set. E.g. `color().enabled(std::io::stdout().is_terminal())`.
    pub fn enabled(self, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

impl std::str::FromStr for Color {
    type Err = String;

    /// `auto`, `always` or `never`.
    fn from_str(s: &str) -> Result<Color, String> {
        match s {
            "auto" => Ok(Color::Auto),
            "always" => Ok(Color::Always),
            "never" => Ok(Color::Never),
            _ => Err(format!("`{s}`: colours are auto, always or never")),
        }
    }
}

static COLOR: AtomicU8 = AtomicU8::new(0);
static PROGRESS: AtomicBool = AtomicBool::new(true);

/// Sets when this program's output carries colours: the `[host]` prefixes
/// of tunnels opened from now on, group progress lines, and whatever asks
/// [`color`] (a kit's lines and recap). [`Color::Auto`] by default.
pub fn set_color(color: Color) {
    COLOR.store(color as u8, Ordering::SeqCst);
}

/// The colour setting of [`set_color`].
pub fn color() -> Color {
    match COLOR.load(Ordering::SeqCst) {
        1 => Color::Always,
        2 => Color::Never,
        _ => Color::Auto,
    }
}

/// Shows group progress lines (`true`, the default: where stderr takes
/// terminal controls, see [`Color`]) or never (`false`, e.g. a quiet
/// run); [`Group::progress`](crate::Group::progress) turns one group's off.
pub fn show_progress(show: bool) {
    PROGRESS.store(show, Ordering::SeqCst);
}

/// Whether this program's stderr gets colours now.
pub(crate) fn stderr_colours() -> bool {
    color().enabled(std::io::stderr().is_terminal())
}

/// Whether a progress line may be drawn on stderr now.
pub(crate) fn progress_allowed() -> bool {
    PROGRESS.load(Ordering::SeqCst) && stderr_colours()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_decides_unless_it_is_auto() {
        assert!(Color::Always.enabled(false));
        assert!(!Color::Never.enabled(true));
        assert!(!Color::Auto.enabled(false));
        assert_eq!("never".parse(), Ok(Color::Never));
        assert!("blue".parse::<Color>().is_err());
    }
}
