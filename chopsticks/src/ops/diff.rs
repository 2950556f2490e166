//! Unified diffs of content changes, computed where the content is (on the
//! agent), for `Change::diff`; bounded in size and in time, so that a plan
//! of a big rewrite costs what reading the file costs.

use std::time::{Duration, Instant};

use similar::{Algorithm, TextDiff};

/// Content larger than this (either side) is summarised, not diffed.
pub const MAX_DIFF: usize = 16 << 20;

/// How long finding a diff may take: past it, the diff is cut (a summary
/// says so). Myers' algorithm is quadratic in the lines that changed: a
/// 500 KB file whose lines all change took 36 s unbounded.
pub const DIFF_TIME: Duration = Duration::from_millis(500);

/// A diff's text longer than this is summarised instead (a rewrite of a
/// big file would otherwise send both versions back whole).
pub const MAX_DIFF_TEXT: usize = 4 << 20;

/// `bytes` as text, when they are text (UTF-8 without NUL).
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// A unified diff from `old` to `new` for `path` (3 lines of context), or a
/// one-line summary when either side is over [`MAX_DIFF`] or not text, when
/// finding the diff took longer than [`DIFF_TIME`], or when it is longer
/// than [`MAX_DIFF_TEXT`]; `None` when they are equal.
pub fn diff(path: &str, old: &[u8], new: &[u8]) -> Option<String> {
    if old == new {
        return None;
    }
    let sizes = format!("{} -> {} bytes", old.len(), new.len());
    if old.len() > MAX_DIFF || new.len() > MAX_DIFF {
        return Some(format!(
            "{path}: content differs ({sizes}, too large to show)\n"
        ));
    }
    let (Some(old), Some(new)) = (text(old), text(new)) else {
        return Some(format!("{path}: binary content differs ({sizes})\n"));
    };
    let deadline = Instant::now() + DIFF_TIME;
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(deadline)
        .diff_lines(old, new);
    if Instant::now() >= deadline {
        // Past the deadline the algorithm approximates: not a diff to show.
        return Some(format!(
            "{path}: content differs ({sizes}; the diff was cut: finding it took longer \
             than {} ms)\n",
            DIFF_TIME.as_millis()
        ));
    }
    let before = format!("{path} (before)");
    let after = format!("{path} (after)");
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&before, &after)
        .to_string();
    if text.len() > MAX_DIFF_TEXT {
        return Some(format!(
            "{path}: content differs ({sizes}; the diff was cut: it is {} bytes long)\n",
            text.len()
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_gets_a_unified_diff_and_the_rest_a_summary() {
        assert_eq!(diff("/f", b"same", b"same"), None);
        let d = diff("/etc/motd", b"a\nb\nc\n", b"a\nB\nc\n").unwrap();
        assert!(
            d.starts_with("--- /etc/motd (before)\n+++ /etc/motd (after)\n"),
            "{d}"
        );
        assert!(d.contains("-b\n+B\n"), "{d}");
        let d = diff("/bin/x", b"\x7fELF\0", b"\x7fELF\0\x01").unwrap();
        assert_eq!(d, "/bin/x: binary content differs (5 -> 6 bytes)\n");
        let big = vec![b'a'; MAX_DIFF + 1];
        assert!(diff("/big", &big, b"").unwrap().contains("too large"));
    }

    /// Every line of a big file changed: quadratic for Myers, so the diff
    /// is cut at its time bound, or its text at its length bound.
    #[test]
    fn a_full_rewrite_of_a_big_file_is_bounded() {
        let lines =
            |tag: &str| -> String { (0..60_000).map(|i| format!("{tag} line {i}\n")).collect() };
        let (old, new) = (lines("old"), lines("new"));
        let start = Instant::now();
        let d = diff("/big", old.as_bytes(), new.as_bytes()).unwrap();
        assert!(d.contains("the diff was cut"), "{}", &d[..200.min(d.len())]);
        assert!(start.elapsed() < DIFF_TIME * 10, "{:?}", start.elapsed());
    }
}
