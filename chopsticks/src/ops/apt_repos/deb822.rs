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

/// How a key is stored: where apt reads it, by its file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyFormat {
    /// ASCII-armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----`): `NAME.asc`.
    Armored,
    /// Binary OpenPGP packets: `NAME.gpg`.
    Binary,
}

impl KeyFormat {
    /// The extension apt reads the format from.
    pub fn extension(self) -> &'static str {
        match self {
            KeyFormat::Armored => "asc",
            KeyFormat::Binary => "gpg",
        }
    }

    /// The format of `key`, as a vendor ships it.
    ///
    /// # Errors
    /// An empty or too large key, a secret key, a GnuPG keybox, or
    /// anything else that is not an OpenPGP public key.
    pub fn of(key: &[u8]) -> Result<KeyFormat, String> {
        const EXPORT: &str = "export the public key (gpg --armor --export KEYID), or give the \
                              file the vendor publishes";
        if key.len() > MAX_KEY {
            return Err(format!(
                "the key is {} bytes, more than the {} MiB a key is: give the public key alone",
                key.len(),
                MAX_KEY >> 20
            ));
        }
        let text = key.trim_ascii_start();
        if let Some(block) = text.strip_prefix(b"-----BEGIN PGP ") {
            if block.starts_with(b"PUBLIC KEY BLOCK-----") {
                const END: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";
                return match key.windows(END.len()).any(|w| w == END) {
                    true => Ok(KeyFormat::Armored),
                    false => Err(format!(
                        "the armored key has no -----END PGP PUBLIC KEY BLOCK----- line: it is \
                         cut short; {EXPORT}"
                    )),
                };
            }
            if block.starts_with(b"PRIVATE KEY BLOCK") {
                return Err(format!(
                    "this is a secret key, which must not be spread: {EXPORT}"
                ));
            }
            return Err(format!("this armored block is not a public key: {EXPORT}"));
        }
        let Some(&first) = key.first() else {
            return Err(format!("the key is empty: {EXPORT}"));
        };
        if key.get(8..12) == Some(b"KBXf") {
            return Err(format!(
                "this is a GnuPG keybox (pubring.kbx), which apt cannot read: {EXPORT}"
            ));
        }
        // An OpenPGP packet's first byte: bit 7 set; the tag in bits 0-5
        // (new format, bit 6 set) or 2-5 (old format).
        let tag = match (first & 0x80 != 0, first & 0x40 != 0) {
            (false, _) => None,
            (true, true) => Some(first & 0x3f),
            (true, false) => Some((first >> 2) & 0x0f),
        };
        match tag {
            Some(6) => Ok(KeyFormat::Binary),
            Some(5) => Err(format!(
                "this is a secret key, which must not be spread: {EXPORT}"
            )),
            _ => Err(format!(
                "this is neither an ASCII-armored key (-----BEGIN PGP PUBLIC KEY BLOCK-----) nor \
                 a binary OpenPGP public key: {EXPORT}"
            )),
        }
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

    #[test]
    fn keys_are_told_apart_as_apt_reads_them() {
        let armored = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n=abc\n\
                        -----END PGP PUBLIC KEY BLOCK-----\n";
        assert_eq!(KeyFormat::of(armored), Ok(KeyFormat::Armored));
        // Old-format and new-format public key packets.
        assert_eq!(KeyFormat::of(&[0x99, 0x01, 0x0d]), Ok(KeyFormat::Binary));
        assert_eq!(KeyFormat::of(&[0xc6, 0x33, 0x04]), Ok(KeyFormat::Binary));
        let secret = b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n";
        assert!(KeyFormat::of(secret).unwrap_err().contains("secret"));
        assert!(KeyFormat::of(&[0x95, 0x01]).unwrap_err().contains("secret"));
        assert!(KeyFormat::of(b"").is_err());
        assert!(KeyFormat::of(b"ssh-ed25519 AAAA").is_err());
        assert!(KeyFormat::of(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nmDM").is_err());
        let mut kbx = vec![0, 0, 0, 32, 1, 1, 0, 0];
        kbx.extend_from_slice(b"KBXf");
        assert!(KeyFormat::of(&kbx).unwrap_err().contains("keybox"));
        assert!(KeyFormat::of(&vec![0x99; MAX_KEY + 1]).is_err());
    }
}
