//! Unified diffs of content changes, computed where the content is (on the
//! agent), for `Change::diff`.

use similar::TextDiff;

/// Content larger than this (either side) is summarised, not diffed.
pub const MAX_DIFF: usize = 16 << 20;

/// `bytes` as text, when they are text (UTF-8 without NUL).
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// A unified diff from `old` to `new` for `path` (3 lines of context), or a
/// one-line summary when either side is over [`MAX_DIFF`] or not text;
/// `None` when they are equal.
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
    let diff = TextDiff::from_lines(old, new);
    let before = format!("{path} (before)");
    let after = format!("{path} (after)");
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&before, &after)
            .to_string(),
    )
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
}
