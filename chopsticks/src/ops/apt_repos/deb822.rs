//! What an [`AptRepository`](super::AptRepository) writes: its fields
//! checked (nothing that could end a deb822 line or field, nothing a tool
//! reads as an option), its `.sources` file, and its key's format.

/// The first line of every `.sources` file this operation writes: how it
/// tells its own from a file written by hand.
pub(super) const MARKER: &str =
    "# Managed by chopsticks (ops::apt_repository): changes made here are replaced.";

/// The longest name, and the longest URI, suite, component or
/// architecture, in bytes.
const MAX_NAME: usize = 100;
const MAX_FIELD: usize = 2048;

/// The most URIs, suites, components, architectures taken (each).
const MAX_ITEMS: usize = 64;

/// The largest key taken: vendor keys are a few KiB, a key with many
/// signatures a few hundred.
pub(super) const MAX_KEY: usize = 1 << 20;

/// Refuses a repository name that cannot name its files: 1 to 100 of
/// `A-Z a-z 0-9 - _ .`, not starting with `-` or `.` (apt skips files
/// with other characters in their names).
pub(super) fn name(name: &str) -> Result<(), String> {
    let valid = (1..=MAX_NAME).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match valid {
        true => Ok(()),
        false => Err(format!(
            "not a repository name: 1 to {MAX_NAME} of A-Z a-z 0-9 - _ ., not starting with - \
             or . (it names /etc/apt/sources.list.d/NAME.sources and the key's file)"
        )),
    }
}

/// Refuses one value of a field (`what`, as the builder calls it) that
/// the `.sources` file cannot hold as one word: empty, too long, with a
/// blank or a control character (a line end would start a field of its
/// own), or starting with `-`.
fn word(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_FIELD {
        return Err(format!("{what}: each is 1 to {MAX_FIELD} bytes long"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what}: {:?} has a blank or a control character: each is one word",
            shown(value)
        ));
    }
    if value.starts_with('-') {
        return Err(format!("{what}: {:?} starts with -", shown(value)));
    }
    Ok(())
}

/// `value` cut short for a message.
pub(super) fn shown(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_owned(),
    }
}

/// Refuses a list of `what` longer than [`MAX_ITEMS`], or with an item
/// [`word`] refuses.
fn words(what: &str, values: &[String]) -> Result<(), String> {
    if values.len() > MAX_ITEMS {
        return Err(format!("{what}: at most {MAX_ITEMS}"));
    }
    values.iter().try_for_each(|v| word(what, v))
}

/// What the `.sources` file says, checked.
pub(super) struct Fields<'a> {
    pub types: &'a [String],
    pub uris: &'a [String],
    pub suites: &'a [String],
    pub components: &'a [String],
    pub architectures: &'a [String],
}

impl Fields<'_> {
    /// Refuses fields apt would reject, or that would not be one field
    /// each: no URI or suite; a URI without a scheme (`https:`, `file:`);
    /// flat suites (ending in `/`) mixed with others, or given components;
    /// other suites without one; a type other than `deb` and `deb-src`.
    pub fn check(&self) -> Result<(), String> {
        words("uris", self.uris)?;
        words("suites", self.suites)?;
        words("components", self.components)?;
        words("architectures", self.architectures)?;
        if self.uris.is_empty() || self.suites.is_empty() {
            return Err("give at least one URI and one suite".into());
        }
        if self.uris.iter().any(|u| has_password(u)) {
            return Err(
                "uris: a URI holds a user and password, which the world-readable .sources file \
                 would show: give the URI without them, and them in a file of \
                 /etc/apt/auth.conf.d (mode 0600; man apt_auth.conf)"
                    .into(),
            );
        }
        if let Some(uri) = self.uris.iter().find(|u| !has_scheme(u)) {
            return Err(format!(
                "uris: {:?} is not a URI: it starts with its scheme (https://..., file:/...)",
                shown(uri)
            ));
        }
        let flat = self.suites.iter().filter(|s| s.ends_with('/')).count();
        match (flat, self.components.is_empty()) {
            (0, true) => {
                return Err(
                    "give at least one component (e.g. main), or a suite ending in / \
                            for a flat repository (e.g. ./)"
                        .into(),
                )
            }
            (0, false) => {}
            (n, true) if n == self.suites.len() => {}
            (n, _) if n == self.suites.len() => {
                return Err(
                    "a flat repository's suites (ending in /) take no components: \
                            give none"
                        .into(),
                )
            }
            _ => {
                return Err(
                    "suites ending in / (a flat repository) and others cannot be mixed: \
                            make two repositories"
                        .into(),
                )
            }
        }
        if self.types.is_empty() || self.types.len() > 2 {
            return Err("types: deb, deb-src or both".into());
        }
        if let Some(t) = self
            .types
            .iter()
            .find(|t| !["deb", "deb-src"].contains(&t.as_str()))
        {
            return Err(format!("types: {:?} is neither deb nor deb-src", shown(t)));
        }
        if let Some(a) = self.architectures.iter().find(|a| {
            !a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }) {
            return Err(format!(
                "architectures: {:?} is not one (amd64, arm64, i386 ...)",
                shown(a)
            ));
        }
        Ok(())
    }

    /// The `.sources` file: [`MARKER`], then one field a line, in the
    /// order `man sources.list` gives them; `signed_by` is the key's path.
    pub fn render(&self, signed_by: Option<&str>) -> String {
        let mut out = format!("{MARKER}\n");
        let mut field = |name: &str, values: &[String]| {
            if !values.is_empty() {
                out.push_str(&format!("{name}: {}\n", values.join(" ")));
            }
        };
        field("Types", self.types);
        field("URIs", self.uris);
        field("Suites", self.suites);
        field("Components", self.components);
        field("Architectures", self.architectures);
        if let Some(path) = signed_by {
            out.push_str(&format!("Signed-By: {path}\n"));
        }
        out
    }
}

/// Whether `uri` starts with a scheme (`https:`, `file:`, `mirror+file:`)
/// followed by something.
fn has_scheme(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, rest)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
                && !rest.is_empty()
        }
        None => false,
    }
}

/// Whether `uri` names a user and password (`https://user:pw@host/`).
fn has_password(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
}

/// Advice given with every refused key.
const EXPORT: &str = "export the public key (gpg --export KEYID, armored or not), or give the \
                      file the vendor publishes";

/// The public key `key`, as a vendor ships it (ASCII-armored or binary
/// OpenPGP packets), as the binary packets apt reads from a `.gpg` file.
///
/// # Errors
/// An empty or too large key, a secret key (or one with a secret key
/// packet), a GnuPG keybox, an armored block cut short or with bad
/// base64, packets that do not start with a public key, or bytes after
/// the last packet.
pub(super) fn public_key(key: &[u8]) -> Result<Vec<u8>, String> {
    if key.len() > MAX_KEY {
        return Err(format!(
            "the key is {} bytes, more than the {} MiB a key is: give the public key alone",
            key.len(),
            MAX_KEY >> 20
        ));
    }
    let text = key.trim_ascii_start();
    let binary = match text.starts_with(b"-----BEGIN PGP ") {
        true => dearmor(text)?,
        false if key.get(8..12) == Some(b"KBXf") => {
            return Err(format!(
                "this is a GnuPG keybox (pubring.kbx), which apt cannot read: {EXPORT}"
            ))
        }
        false => key.to_vec(),
    };
    packets(&binary)?;
    Ok(binary)
}

/// The bytes of an ASCII-armored public key block: its lines trimmed
/// (CR, indentation), the headers up to the first blank line skipped, the
/// base64 up to the checksum (`=...`) or the END line decoded.
fn dearmor(text: &[u8]) -> Result<Vec<u8>, String> {
    const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const END: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";
    let mut lines = text.split(|&b| b == b'\n').map(<[u8]>::trim_ascii);
    match lines.next() {
        Some(BEGIN) => {}
        Some(l) if l.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK") => {
            return Err(format!(
                "this is a secret key, which must not be spread: {EXPORT}"
            ))
        }
        _ => return Err(format!("this armored block is not a public key: {EXPORT}")),
    }
    let cut = || {
        format!("the armored key has no -----END PGP PUBLIC KEY BLOCK----- line: it is cut short; {EXPORT}")
    };
    // Headers (`Version: ...`) up to the blank line; a block without them
    // may lack the blank line too.
    let mut body = Vec::new();
    let mut in_headers = true;
    let mut ended = false;
    for line in lines.by_ref() {
        if in_headers {
            if line.is_empty() {
                in_headers = false;
                continue;
            }
            if line.contains(&b':') {
                continue;
            }
            in_headers = false;
        }
        if line == END {
            ended = true;
            break;
        }
        if line.starts_with(b"=") {
            match lines.next() {
                Some(END) => {
                    ended = true;
                    break;
                }
                _ => return Err(cut()),
            }
        }
        body.extend_from_slice(line);
    }
    if !ended {
        return Err(cut());
    }
    if lines.any(|l| !l.is_empty()) {
        return Err(format!(
            "the armored key has more after its END line: give one key block; {EXPORT}"
        ));
    }
    base64(&body).ok_or_else(|| format!("the armored key's base64 is broken: {EXPORT}"))
}

/// The bytes of standard base64 (`=` padding at the end only), or `None`.
fn base64(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let data = text
        .strip_suffix(b"==")
        .or(text.strip_suffix(b"="))
        .unwrap_or(text);
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Walks the OpenPGP packets of `key`: a public key packet (tag 6) first,
/// as apt tells a binary key by its first byte (0x98, 0x99, 0xc6); no
/// secret key packet (tags 5, 7); each packet whole, nothing after the
/// last.
fn packets(key: &[u8]) -> Result<(), String> {
    let junk = || {
        format!(
            "this is neither an ASCII-armored key (-----BEGIN PGP PUBLIC KEY BLOCK-----) nor \
             binary OpenPGP packets (or it is cut short, or has more after them): {EXPORT}"
        )
    };
    match key.first() {
        None => return Err(format!("the key is empty: {EXPORT}")),
        Some(0x98 | 0x99 | 0xc6) => {}
        Some(&b) if tag_of(b) == Some(5) => {
            return Err(format!(
                "this is a secret key, which must not be spread: {EXPORT}"
            ))
        }
        Some(_) => return Err(junk()),
    }
    let mut at = 0;
    while at < key.len() {
        let first = key[at];
        let tag = tag_of(first).ok_or_else(junk)?;
        if tag == 5 || tag == 7 {
            return Err(format!(
                "the key holds a secret key, which must not be spread: {EXPORT}"
            ));
        }
        let byte = |i: usize| key.get(at + i).map(|&b| b as usize).ok_or_else(junk);
        let (header, length) = match first & 0x40 != 0 {
            true => match byte(1)? {
                o @ 0..=191 => (2, o),
                o @ 192..=223 => (3, ((o - 192) << 8) + byte(2)? + 192),
                255 => (
                    6,
                    (byte(2)? << 24) | (byte(3)? << 16) | (byte(4)? << 8) | byte(5)?,
                ),
                // Partial lengths are for data packets, not keys.
                _ => return Err(junk()),
            },
            false => match first & 3 {
                0 => (2, byte(1)?),
                1 => (3, (byte(1)? << 8) | byte(2)?),
                2 => (
                    5,
                    (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?,
                ),
                _ => return Err(junk()),
            },
        };
        at = at
            .checked_add(header)
            .and_then(|a| a.checked_add(length))
            .filter(|&end| end <= key.len())
            .ok_or_else(junk)?;
    }
    Ok(())
}

/// The tag of the packet whose first byte is `first`: bit 7 set; the tag
/// in bits 0-5 (new format, bit 6 set) or 2-5 (old format).
fn tag_of(first: u8) -> Option<u8> {
    match (first & 0x80 != 0, first & 0x40 != 0) {
        (false, _) => None,
        (true, true) => Some(first & 0x3f),
        (true, false) => Some((first >> 2) & 0x0f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_that_name_a_file_only() {
        for good in ["docker", "cs-signed", "pgdg_16.x", "A1"] {
            assert!(name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "a\nb", "ä", &"x".repeat(101)] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fields_are_one_word_each_and_a_flat_suite_has_no_components() {
        let (deb, uri) = (strings(&["deb"]), strings(&["https://example.org/debian"]));
        let fields = |suites: &[&str], components: &[&str]| {
            let (s, c) = (strings(suites), strings(components));
            Fields {
                types: &deb,
                uris: &uri,
                suites: &s,
                components: &c,
                architectures: &[],
            }
            .check()
        };
        assert!(fields(&["bookworm"], &["main", "contrib"]).is_ok());
        assert!(fields(&["./"], &[]).is_ok());
        assert!(fields(&["stable/"], &["main"]).is_err());
        assert!(fields(&["bookworm"], &[]).is_err());
        assert!(fields(&["./", "bookworm"], &["main"]).is_err());
        assert!(fields(&["bookworm\nSigned-By: /x"], &["main"]).is_err());
        assert!(fields(&["bookworm"], &["main non-free"]).is_err());
        assert!(fields(&["-x"], &["main"]).is_err());
        assert!(fields(&[], &["main"]).is_err());
        let bad_uri = |u: &str| {
            let uris = strings(&[u]);
            Fields {
                types: &deb,
                uris: &uris,
                suites: &strings(&["./"]),
                components: &[],
                architectures: &[],
            }
            .check()
        };
        assert!(bad_uri("file:/srv/repo").is_ok());
        assert!(bad_uri("mirror+file:/etc/mirrors").is_ok());
        for bad in [
            "",
            "/srv/repo",
            "example.org/debian",
            "https://x\nSuites: y",
            "https://x y",
            "https://u:secret@example.org/debian",
            "-o",
            "http:",
        ] {
            assert!(bad_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_file_has_one_field_a_line() {
        let f = Fields {
            types: &strings(&["deb", "deb-src"]),
            uris: &strings(&["https://a/debian", "https://b/debian"]),
            suites: &strings(&["bookworm"]),
            components: &strings(&["main", "contrib"]),
            architectures: &strings(&["amd64"]),
        };
        assert!(f.check().is_ok());
        assert_eq!(
            f.render(Some("/etc/apt/keyrings/x.asc")),
            format!(
                "{MARKER}\nTypes: deb deb-src\nURIs: https://a/debian https://b/debian\n\
                 Suites: bookworm\nComponents: main contrib\nArchitectures: amd64\n\
                 Signed-By: /etc/apt/keyrings/x.asc\n"
            )
        );
    }

    /// A public key packet of `n` body bytes, old format.
    fn public(n: u8) -> Vec<u8> {
        let mut p = vec![0x98, n];
        p.extend(std::iter::repeat_n(4, n.into()));
        p
    }

    fn armored(binary: &[u8], eol: &str, indent: &str) -> Vec<u8> {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut enc = String::new();
        for chunk in binary.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |a, &b| a << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                match i <= chunk.len() {
                    true => enc.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char),
                    false => enc.push('='),
                }
            }
        }
        let lines: Vec<&str> = enc
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let mut out = format!(
            "{indent}-----BEGIN PGP PUBLIC KEY BLOCK-----{eol}{indent}Comment: x{eol}{eol}"
        );
        for l in lines {
            out.push_str(&format!("{indent}{l}{eol}"));
        }
        out.push_str(&format!(
            "{indent}=abcd{eol}{indent}-----END PGP PUBLIC KEY BLOCK-----{eol}"
        ));
        out.into_bytes()
    }

    #[test]
    fn keys_are_stored_as_the_binary_packets_apt_reads() {
        let mut key = public(13);
        key.extend([0xb4, 2, b'm', b'e']); // a user ID packet
        key.extend([0xc2, 1, 9]); // a signature packet, new format
        assert_eq!(public_key(&key), Ok(key.clone()));
        for (eol, indent) in [("\n", ""), ("\r\n", ""), ("\n", "    "), ("\r\n", "\t")] {
            assert_eq!(
                public_key(&armored(&key, eol, indent)),
                Ok(key.clone()),
                "{eol:?} {indent:?}"
            );
        }
        // A secret key packet anywhere, or bytes after the packets, is refused.
        let mut secret = key.clone();
        secret.extend([0x95, 1, 0]);
        assert!(public_key(&secret).unwrap_err().contains("secret"));
        assert!(public_key(&armored(&secret, "\n", ""))
            .unwrap_err()
            .contains("secret"));
        let mut junk = key.clone();
        junk.extend(b"junk");
        assert!(public_key(&junk).is_err());
        assert!(public_key(&armored(&junk, "\n", "")).is_err());
        assert!(public_key(&key[..key.len() - 1]).is_err());
        let mut after = armored(&key, "\n", "");
        after.extend(b"more\n");
        assert!(public_key(&after).is_err());
        assert!(public_key(&[0x95, 0x01, 0]).unwrap_err().contains("secret"));
        assert!(public_key(&[0xc4, 0x01, 0]).is_err()); // tag 4 first
        assert!(public_key(b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n")
            .unwrap_err()
            .contains("secret"));
        assert!(public_key(b"").is_err());
        assert!(public_key(b"ssh-ed25519 AAAA").is_err());
        assert!(public_key(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDM").is_err());
        assert!(public_key(
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nm!M=\n-----END PGP PUBLIC KEY BLOCK-----\n"
        )
        .is_err());
        let mut kbx = vec![0, 0, 0, 32, 1, 1, 0, 0];
        kbx.extend_from_slice(b"KBXf");
        assert!(public_key(&kbx).unwrap_err().contains("keybox"));
        assert!(public_key(&vec![0x99; MAX_KEY + 1]).is_err());
    }
}
