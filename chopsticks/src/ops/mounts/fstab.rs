//! `/etc/fstab` as fstab(5) and libmount read it: one entry a line,
//! fields separated by blanks, blanks and backslashes inside a field
//! written as octal escapes (`\040`), `#` starting a comment line; and
//! the text with one entry put in, replaced or taken out, every other
//! line kept byte for byte.

use std::collections::BTreeSet;

use super::super::text::bare;

/// An entry as it is to be written: every field as given (escaped when
/// written), the options in the order given, duplicates dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub source: String,
    pub path: String,
    pub fstype: String,
    pub options: Vec<String>,
    pub dump: u32,
    pub pass: u32,
}

impl Entry {
    /// The options field: the options joined with commas, `defaults`
    /// when there are none.
    pub fn options_field(&self) -> String {
        match self.options.is_empty() {
            true => "defaults".to_owned(),
            false => self.options.join(","),
        }
    }

    /// The entry's line, without its line end.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            escape(&self.source),
            escape(&self.path),
            escape(&self.fstype),
            escape(&self.options_field()),
            self.dump,
            self.pass
        )
    }

    /// Whether `fields` (a line's, unescaped) say what this entry says:
    /// the options compared as a set, a missing dump or pass read as 0,
    /// fields after the sixth (a trailing comment) not counted, as
    /// libmount does not read them. The mount point is compared byte for
    /// byte, so a line that spells it otherwise (`/mnt//x`) is rewritten.
    pub fn same_as(&self, fields: &[Vec<u8>]) -> bool {
        let number = |i: usize| match fields.get(i) {
            None => Some(0),
            Some(f) => std::str::from_utf8(f).ok()?.parse::<u32>().ok(),
        };
        fields.first().map(Vec::as_slice) == Some(self.source.as_bytes())
            && fields.get(1).map(Vec::as_slice) == Some(self.path.as_bytes())
            && fields.get(2).map(Vec::as_slice) == Some(self.fstype.as_bytes())
            && option_set(fields.get(3).map_or(&b""[..], Vec::as_slice))
                == option_set(self.options_field().as_bytes())
            && number(4) == Some(self.dump)
            && number(5) == Some(self.pass)
    }
}

/// The options of an options field as a set: order and duplicates do not
/// count, no options at all are `defaults`, and `defaults` beside other
/// options does not count (they override it).
pub(super) fn option_set(field: &[u8]) -> BTreeSet<&[u8]> {
    let mut set: BTreeSet<&[u8]> = field
        .split(|&b| b == b',')
        .filter(|o| !o.is_empty())
        .collect();
    if set.len() > 1 {
        set.remove(&b"defaults"[..]);
    }
    match set.is_empty() {
        true => BTreeSet::from([&b"defaults"[..]]),
        false => set,
    }
}

/// A mount point as libmount compares it: repeated `/` as one, and no
/// final `/` (but for `/` itself).
pub(super) fn normal_point(point: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(point.len());
    for &b in point {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    if out.len() > 1 && out.last() == Some(&b'/') {
        out.pop();
    }
    out
}

/// `field` as fstab(5) writes it: space, tab, newline and backslash (and
/// any other control character, and a `#` that would start a comment) as
/// a backslash and three octal digits, which libmount reads back.
pub(super) fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for (i, c) in field.char_indices() {
        match c == ' ' || c == '\\' || c.is_ascii_control() || (i == 0 && c == '#') {
            true => out.push_str(&format!("\\{:03o}", c as u32)),
            false => out.push(c),
        }
    }
    out
}

/// `field` with its octal escapes (`\040`, as fstab(5) and the kernel's
/// `/proc/self/mountinfo` write them) read back; a backslash not followed
/// by three octal digits stands for itself.
pub(super) fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            d[0].is_ascii_digit()
                && d[0] <= b'3'
                && d[1..].iter().all(|b| (b'0'..=b'7').contains(b))
        });
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The fields of an fstab line, unescaped; none for a blank or comment
/// line.
pub(super) fn fields(line: &str) -> Vec<Vec<u8>> {
    let line = bare(line);
    if line.trim_start_matches([' ', '\t']).starts_with('#') {
        return Vec::new();
    }
    line.split([' ', '\t'])
        .filter(|f| !f.is_empty())
        .map(unescape)
        .collect()
}

/// The entry of an fstab text for one mount point: its line's index (from
/// 0) and fields.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub index: usize,
    pub fields: Vec<Vec<u8>>,
}

/// The longest a line is shown in an error.
const SHOWN_LINE: usize = 120;

/// The entry of `text` for the mount point `path` (a normal one), if it
/// has one: a line's mount point compared once [normal](normal_point).
///
/// # Errors
/// More than one line is an entry for `path`: which one counts would be
/// a guess, so both are named (by number and text) for the user to
/// remove one.
pub(super) fn entry_for(text: &str, path: &[u8]) -> Result<Option<Found>, String> {
    let mut found: Option<Found> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let fields = fields(line);
        if fields.get(1).map(|f| normal_point(f)).as_deref() != Some(path) {
            continue;
        }
        if let Some(first) = &found {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let shown = |i: usize| {
                let line = bare(lines[i]);
                match line.char_indices().nth(SHOWN_LINE) {
                    Some((at, _)) => format!("line {} ({:?}...)", i + 1, &line[..at]),
                    None => format!("line {} ({line:?})", i + 1),
                }
            };
            return Err(format!(
                "/etc/fstab has more than one entry for this mount point: {} and {}; which one \
                 counts would be a guess: remove one of them (by hand, or with ops::line), then \
                 apply again",
                shown(first.index),
                shown(index)
            ));
        }
        found = Some(Found { index, fields });
    }
    Ok(found)
}

/// `text` with the line at `index` (when there is one) replaced by `line`
/// (or removed when `None`), or `line` added at the end when `index` is
/// `None`; every other line as it was. A replaced line keeps its line
/// end; an added one ends with `\n` (and the line before it gets one when
/// the text did not end with one).
pub(super) fn edited(text: &str, index: Option<usize>, line: Option<&str>) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    match (index, line) {
        (Some(i), Some(line)) => {
            let end = &lines[i][bare(&lines[i]).len()..];
            lines[i] = format!("{line}{}", if end.is_empty() { "\n" } else { end });
        }
        (Some(i), None) => {
            lines.remove(i);
        }
        (None, Some(line)) => {
            if let Some(last) = lines.last_mut().filter(|l| !l.ends_with('\n')) {
                last.push('\n');
            }
            lines.push(format!("{line}\n"));
        }
        (None, None) => {}
    }
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, options: &[&str]) -> Entry {
        Entry {
            source: "tmpfs".into(),
            path: path.into(),
            fstype: "tmpfs".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            dump: 0,
            pass: 0,
        }
    }

    #[test]
    fn fields_are_escaped_as_fstab_5_says() {
        assert_eq!(escape("/mnt/a b\tc\nd\\e"), r"/mnt/a\040b\011c\012d\134e");
        assert_eq!(escape("#x#y"), r"\043x#y");
        assert_eq!(escape("/mnt/été"), "/mnt/été");
        for field in ["/mnt/a b\tc\nd\\e", "#x", "\r", "/plain"] {
            assert_eq!(unescape(&escape(field)), field.as_bytes(), "{field:?}");
        }
        // What is not an octal escape stands for itself.
        assert_eq!(unescape(r"a\b\08\400\04"), br"a\b\08\400\04");
        assert_eq!(unescape(r"\377"), [0xff]);
        let e = entry("/mnt/a b", &[]);
        assert_eq!(e.line(), r"tmpfs /mnt/a\040b tmpfs defaults 0 0");
    }

    #[test]
    fn lines_are_read_as_libmount_reads_them() {
        assert!(fields("# tmpfs /mnt tmpfs defaults 0 0\n").is_empty());
        assert!(fields("   \t# comment").is_empty());
        assert!(fields("\r\n").is_empty());
        assert_eq!(
            fields("tmpfs\t/mnt/a\\040b  tmpfs size=1m\r\n"),
            [&b"tmpfs"[..], b"/mnt/a b", b"tmpfs", b"size=1m"]
        );
    }

    #[test]
    fn options_compare_as_a_set() {
        let e = entry("/mnt/x", &["size=1m", "noexec"]);
        let line = |l: &str| fields(l);
        assert!(e.same_as(&line("tmpfs /mnt/x tmpfs noexec,size=1m,noexec 0 0")));
        assert!(e.same_as(&line("tmpfs  /mnt/x\ttmpfs noexec,size=1m")));
        assert!(!e.same_as(&line("tmpfs /mnt/x tmpfs noexec 0 0")));
        assert!(!e.same_as(&line("tmpfs /mnt/x tmpfs noexec,size=1m 0 2")));
        assert!(!e.same_as(&line("tmpfs /mnt/x tmpfs noexec,size=1m 0 x")));
        assert!(!e.same_as(&line("none /mnt/x tmpfs noexec,size=1m 0 0")));
        assert!(!e.same_as(&line("tmpfs /mnt/x ramfs noexec,size=1m 0 0")));
        let d = entry("/mnt/x", &[]);
        assert!(d.same_as(&line("tmpfs /mnt/x tmpfs")));
        assert!(d.same_as(&line("tmpfs /mnt/x tmpfs defaults,defaults 0 0")));
        assert!(!d.same_as(&line("tmpfs /mnt/x tmpfs defaults,ro 0 0")));
        assert_eq!(option_set(b",,"), BTreeSet::from([&b"defaults"[..]]));
        // `defaults` beside others does not count.
        assert!(e.same_as(&line("tmpfs /mnt/x tmpfs defaults,noexec,size=1m 0 0")));
        assert_eq!(option_set(b"defaults,ro"), option_set(b"ro"));
        // What follows the sixth field is not read.
        assert!(e.same_as(&line("tmpfs /mnt/x tmpfs noexec,size=1m 0 0 # scratch")));
        assert!(!e.same_as(&line("tmpfs /mnt/x tmpfs noexec,size=1m 0 1 # scratch")));
        // Another spelling of the mount point is rewritten.
        assert!(!e.same_as(&line("tmpfs /mnt//x/ tmpfs noexec,size=1m 0 0")));
    }

    #[test]
    fn one_entry_per_mount_point_is_found_and_two_are_refused() {
        let text =
            "# /etc/fstab\n\nUUID=1 / ext4 defaults 0 1\ntmpfs /mnt/a\\040b tmpfs defaults 0 0\n";
        assert_eq!(
            entry_for(text, b"/mnt/a b").unwrap().map(|f| f.index),
            Some(3)
        );
        assert_eq!(entry_for(text, b"/mnt/a").unwrap(), None);
        assert_eq!(entry_for(text, b"/").unwrap().map(|f| f.index), Some(2));
        for spelled in ["/mnt//x", "/mnt/x/", "//mnt///x//"] {
            let other = format!("{text}tmpfs {spelled} tmpfs defaults 0 0\n");
            let found = entry_for(&other, b"/mnt/x").unwrap();
            assert_eq!(found.map(|f| f.index), Some(4), "{spelled}");
        }
        let slashes = "none // tmpfs defaults 0 0\n";
        assert_eq!(entry_for(slashes, b"/").unwrap().map(|f| f.index), Some(0));
        let twice = format!("{text}tmpfs /mnt/x tmpfs ro 0 0\nx /mnt/x/ tmpfs ro 0 0\n");
        assert!(entry_for(&twice, b"/mnt/x").is_err());
        let twice = format!("{text}#\nnone /mnt/a\\040b tmpfs ro 0 0\n");
        let err = entry_for(&twice, b"/mnt/a b").unwrap_err();
        assert!(
            err.contains(r#"line 4 ("tmpfs /mnt/a\\040b tmpfs defaults 0 0")"#)
                && err.contains(r#"line 6 ("none /mnt/a\\040b tmpfs ro 0 0")"#),
            "{err}"
        );
    }

    #[test]
    fn other_lines_are_kept_byte_for_byte() {
        let text =
            "# keep  me\r\n\n\tUUID=1 / ext4 defaults 0 1\r\ntmpfs /mnt/x tmpfs ro 0 0\r\n#end";
        let new = "tmpfs /mnt/x tmpfs rw 0 0";
        assert_eq!(
            edited(text, Some(3), Some(new)),
            "# keep  me\r\n\n\tUUID=1 / ext4 defaults 0 1\r\ntmpfs /mnt/x tmpfs rw 0 0\r\n#end"
        );
        assert_eq!(
            edited(text, Some(3), None),
            "# keep  me\r\n\n\tUUID=1 / ext4 defaults 0 1\r\n#end"
        );
        assert_eq!(edited(text, None, Some(new)), format!("{text}\n{new}\n"));
        assert_eq!(edited("", None, Some(new)), format!("{new}\n"));
        assert_eq!(edited("a\nb", Some(1), Some(new)), format!("a\n{new}\n"));
    }
}
