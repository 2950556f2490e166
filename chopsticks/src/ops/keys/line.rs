//! One line of `authorized_keys` read as sshd reads it: options, key
//! type, base64 blob, comment; and the base64 it needs.

use sha2::{Digest, Sha256};

/// The longest key line a spec may give, in bytes (a 16384-bit RSA key
/// with long options and a certificate fit).
pub(super) const MAX_KEY_LINE: usize = 16 << 10;

/// The key types OpenSSH accepts in `authorized_keys`, and their
/// certificates.
const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// One key line, read: its options (empty for none), type, base64 blob
/// and comment (empty for none). A key is identified by type and blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) options: String,
    pub(super) kind: String,
    pub(super) blob: String,
    pub(super) comment: String,
}

impl Key {
    /// The line as `authorized_keys` holds it.
    pub(super) fn line(&self) -> String {
        let mut parts = Vec::new();
        if !self.options.is_empty() {
            parts.push(self.options.as_str());
        }
        parts.extend([self.kind.as_str(), self.blob.as_str()]);
        if !self.comment.is_empty() {
            parts.push(self.comment.as_str());
        }
        parts.join(" ")
    }

    /// How summaries name it: its type, `SHA256:` fingerprint (as
    /// `ssh-keygen -l` shows it) and comment.
    pub(super) fn shown(&self) -> String {
        let sum = decode64(&self.blob)
            .map(|b| encode64(&Sha256::digest(b)))
            .unwrap_or_default();
        let sum = sum.trim_end_matches('=');
        match self.comment.is_empty() {
            true => format!("{} SHA256:{sum}", self.kind),
            false => format!("{} SHA256:{sum} ({})", self.kind, self.comment),
        }
    }

    pub(super) fn same_key(&self, other: &Key) -> bool {
        self.kind == other.kind && self.blob == other.blob
    }
}

/// The first field of `text` (up to unquoted white space; a `"` quotes up
/// to the next unescaped `"`), and the rest after the white space; `None`
/// when a quote is not closed.
fn field(text: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return Some((&text[..i], text[i..].trim_start())),
            _ => {}
        }
    }
    (!quoted).then_some((text, ""))
}

/// Reads a key line, `[options] type base64 [comment]`.
///
/// # Errors
/// What is wrong with it, for a message.
pub(super) fn parse(line: &str) -> Result<Key, String> {
    let line = line.trim_matches([' ', '\t', '\r', '\n']);
    if line.len() > MAX_KEY_LINE {
        return Err(format!(
            "a key line of {} bytes: the longest taken is {MAX_KEY_LINE}",
            line.len()
        ));
    }
    if line.contains(|c: char| c.is_control() && c != '\t') {
        return Err("a key line holds a line break or another control character".into());
    }
    let (first, rest) = field(line).ok_or("its options have an unclosed quote")?;
    let (options, rest) = match TYPES.contains(&first) {
        true => ("", line),
        false => (first, rest),
    };
    let (kind, rest) = field(rest).ok_or("a quote is not closed")?;
    if !TYPES.contains(&kind) {
        let shown: String = kind.chars().take(40).collect();
        return Err(format!(
            "{shown:?} is not an OpenSSH key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, \
             ...): give the public key line as `ssh-keygen` writes it (the .pub file)"
        ));
    }
    let (blob, comment) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let bytes = decode64(blob).ok_or_else(|| {
        format!("the {kind} key is not valid base64: copy the whole line of the .pub file")
    })?;
    match embedded_type(&bytes) {
        Some(t) if t == kind.as_bytes() => {}
        Some(t) => {
            return Err(format!(
                "the key says {kind} but its data is a {} key: fix the type, or copy the \
                 line again",
                String::from_utf8_lossy(t)
                    .chars()
                    .take(40)
                    .collect::<String>()
            ))
        }
        None => return Err(format!("the {kind} key's data is cut short or garbled")),
    }
    Ok(Key {
        options: options.to_owned(),
        kind: kind.to_owned(),
        blob: blob.to_owned(),
        comment: comment.trim().to_owned(),
    })
}

/// The key type a key blob starts with (an SSH string: a 4-byte
/// big-endian length, then the bytes).
fn embedded_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    blob.get(4..4usize.checked_add(len)?)
        .filter(|t| !t.is_empty())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with its padding; `None` when not valid.
pub(super) fn decode64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for &b in &bytes[..bytes.len() - pad] {
        let v = ALPHABET.iter().position(|a| *a == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // The bits left over from padding must be zero (a canonical encoding).
    (acc == 0).then_some(out)
}

/// Standard base64 with padding.
pub(super) fn encode64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    out
}

/// Refuses options or a comment that could end the line or, for options,
/// run into the key type.
pub(super) fn check_extra(what: &str, text: &str) -> Result<(), String> {
    if text.contains(|c: char| c.is_control()) {
        return Err(format!(
            "the {what} hold a line break or another control character"
        ));
    }
    if what == "options" && field(text) != Some((text, "")) {
        return Err(
            "the options must be one field: comma-separated, no unquoted spaces, quotes closed \
             (e.g. from=\"10.0.0.0/8\",no-pty)"
                .into(),
        );
    }
    Ok(())
}
