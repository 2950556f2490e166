//! [`authorized_key`]: OpenSSH public keys in a user's
//! `~/.ssh/authorized_keys`.

use std::ffi::CString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{diff, tools, Change, Mode, OpError, Owner, Plan, Writer};
use crate::files::{self, describe, Entry, Kind};
use crate::remote;

const OP: &str = "ops::authorized_key";

/// The longest key line a spec may give, in bytes (a 16384-bit RSA key
/// with long options and a certificate fit).
const MAX_KEY_LINE: usize = 16 << 10;

/// The most keys one spec may give.
const MAX_KEYS: usize = 1000;

/// The largest `authorized_keys` file read, in bytes.
const MAX_FILE: u64 = 4 << 20;

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
struct Key {
    options: String,
    kind: String,
    blob: String,
    comment: String,
}

impl Key {
    /// The line as `authorized_keys` holds it.
    fn line(&self) -> String {
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
    fn shown(&self) -> String {
        let sum = decode64(&self.blob)
            .map(|b| encode64(&Sha256::digest(b)))
            .unwrap_or_default();
        let sum = sum.trim_end_matches('=');
        match self.comment.is_empty() {
            true => format!("{} SHA256:{sum}", self.kind),
            false => format!("{} SHA256:{sum} ({})", self.kind, self.comment),
        }
    }

    fn same_key(&self, other: &Key) -> bool {
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
fn parse(line: &str) -> Result<Key, String> {
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
fn decode64(text: &str) -> Option<Vec<u8>> {
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
fn encode64(bytes: &[u8]) -> String {
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
fn check_extra(what: &str, text: &str) -> Result<(), String> {
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

/// OpenSSH public keys a user accepts, in their `~/.ssh/authorized_keys`
/// (the home from the password database), as Ansible's `authorized_key`
/// manages them.
///
/// ```
/// use chopsticks::ops::AuthorizedKey;
///
/// let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBGmTj2Gi1bG2AQiAMvxTYXgPaE4Pk2pU6wbDr1UFtNO ci@build";
/// let deploy = AuthorizedKey::new("deploy", key).options(r#"from="10.0.0.0/8",no-pty"#);
/// assert!(deploy.validate().is_ok());
/// let only = AuthorizedKey::keys("deploy", [key]).exclusive();
/// let gone = AuthorizedKey::new("deploy", key).absent();
/// assert!(AuthorizedKey::new("deploy", "ssh-ed25519 not-base64").validate().is_err());
/// # let _ = (only, gone);
/// ```
///
/// A key is identified by its type and base64 data: one already in the
/// file with other options or another comment is rewritten in place. The
/// file's other lines (comments, other keys) keep their order. When
/// present, `~/.ssh` is made a directory with mode `0700` and the file
/// `0600`, both owned by the user and their primary group; a link at
/// either, or either owned by another user, is refused.
///
/// Bounds: at most 1000 keys of at most 16 KiB each per spec, and an
/// `authorized_keys` of at most 4 MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedKey {
    user: String,
    keys: Vec<String>,
    options: Option<String>,
    comment: Option<String>,
    absent: bool,
    exclusive: bool,
}

impl AuthorizedKey {
    /// The key line `key` (`[options] type base64 [comment]`, as in a
    /// `.pub` file) in `user`'s `authorized_keys`.
    pub fn new(user: impl Into<String>, key: impl Into<String>) -> AuthorizedKey {
        AuthorizedKey::keys(user, [key])
    }

    /// Several key lines at once (each as [`new`](AuthorizedKey::new)
    /// takes it): with [`exclusive`](AuthorizedKey::exclusive), the only
    /// keys the user keeps.
    pub fn keys<S: Into<String>>(
        user: impl Into<String>,
        keys: impl IntoIterator<Item = S>,
    ) -> AuthorizedKey {
        AuthorizedKey {
            user: user.into(),
            keys: keys.into_iter().map(Into::into).collect(),
            options: None,
            comment: None,
            absent: false,
            exclusive: false,
        }
    }

    /// One more key line.
    pub fn key(mut self, key: impl Into<String>) -> AuthorizedKey {
        self.keys.push(key.into());
        self
    }

    /// The options of every key given (`from="10.0.0.0/8",no-pty`),
    /// instead of those in its line; `""` for none.
    pub fn options(mut self, options: impl Into<String>) -> AuthorizedKey {
        self.options = Some(options.into());
        self
    }

    /// The comment of every key given, instead of the one in its line.
    pub fn comment(mut self, comment: impl Into<String>) -> AuthorizedKey {
        self.comment = Some(comment.into());
        self
    }

    /// The keys must not be in the file (they are removed).
    pub fn absent(mut self) -> AuthorizedKey {
        self.absent = true;
        self
    }

    /// Only the keys given stay: every other line that is not blank or a
    /// `#` comment is removed, lines this operation cannot read as a key
    /// too (sshd may read them).
    pub fn exclusive(mut self) -> AuthorizedKey {
        self.exclusive = true;
        self
    }

    fn error(&self, message: impl Into<String>) -> OpError {
        OpError::new(OP, &self.user, message)
    }

    /// The keys as they are to be written, options and comment applied.
    fn wanted(&self) -> Result<Vec<Key>, OpError> {
        tools::account_name(OP, "user", &self.user)?;
        if self.keys.is_empty() && !self.exclusive {
            return Err(self.error("no key given: give at least one public key line"));
        }
        if self.keys.len() > MAX_KEYS {
            return Err(self.error(format!(
                "{} keys given: the most one spec takes is {MAX_KEYS}",
                self.keys.len()
            )));
        }
        if let Some(options) = &self.options {
            check_extra("options", options).map_err(|e| self.error(e))?;
        }
        if let Some(comment) = &self.comment {
            check_extra("comment", comment).map_err(|e| self.error(e))?;
        }
        let mut keys: Vec<Key> = Vec::new();
        for (i, line) in self.keys.iter().enumerate() {
            let mut key = parse(line).map_err(|e| self.error(format!("key {}: {e}", i + 1)))?;
            if let Some(options) = &self.options {
                key.options = options.clone();
            }
            if let Some(comment) = &self.comment {
                key.comment = comment.trim().to_owned();
            }
            match keys.iter().position(|k| k.same_key(&key)) {
                Some(_) => {}
                None => keys.push(key),
            }
        }
        Ok(keys)
    }

    /// Checks the spec without a host: the user name, and that each key
    /// is a well-formed OpenSSH public key (a known type, valid base64,
    /// data of the type it claims). [`plan`](AuthorizedKey::plan) checks
    /// the same first.
    ///
    /// # Errors
    /// What is wrong, and how to fix it.
    pub fn validate(&self) -> Result<(), OpError> {
        self.wanted().map(drop)
    }

    /// What making the file so would change.
    ///
    /// # Errors
    /// A malformed key or user name; a link at `~/.ssh` or at the file, or
    /// either owned by another user; a file that cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        let keys = self.wanted()?;
        match account(&self.user).map_err(|e| self.error(e))? {
            Some(account) => self.plan_for(&account, keys),
            None if self.absent => Ok(Plan::unchanged(format!(
                "user {} does not exist: no key of theirs to remove",
                self.user
            ))),
            None => {
                let shown: Vec<String> = keys.iter().map(Key::shown).collect();
                let summary = format!(
                    "{}: add {}; needs user {}, which must exist by then (ops::user)",
                    self.user,
                    shown.join(", "),
                    self.user
                );
                Ok(Plan::change(summary, None, move |w| {
                    let Some(account) = account(&self.user).map_err(|e| self.error(e))? else {
                        return Err(self.error(format!(
                            "there is no user {} on this host: create it first (ops::user)",
                            self.user
                        )));
                    };
                    self.plan_for(&account, keys)?.apply_with(w)
                }))
            }
        }
    }

    /// The plan for an existing account.
    fn plan_for(self, account: &Account, keys: Vec<Key>) -> Result<Plan, OpError> {
        let ssh = account.home.join(".ssh");
        let path = ssh.join("authorized_keys");
        let shown = path.display().to_string();
        let fail = |at: &Path, message: String| OpError::new(OP, at.display(), message);
        let owner = Owner {
            user: Some(account.uid.to_string()),
            group: Some(account.gid.to_string()),
        };
        let check_entry = |at: &Path, want: Kind| -> Result<Option<Entry>, OpError> {
            let entry = files::entry_at(at).map_err(|e| fail(at, describe(&e)))?;
            let Some(entry) = entry else { return Ok(None) };
            if entry.kind == Kind::Link {
                return Err(fail(
                    at,
                    format!(
                        "is a symbolic link: {OP} does not write through one (someone could \
                         point it at another file); replace it with a real {}",
                        if want == Kind::Dir {
                            "directory"
                        } else {
                            "file"
                        }
                    ),
                ));
            }
            if entry.kind != want {
                return Err(fail(
                    at,
                    "is neither a directory nor a regular file as expected: remove it".into(),
                ));
            }
            if entry.uid != account.uid {
                return Err(fail(
                    at,
                    format!(
                        "is owned by uid {}, not by {} (uid {}): {OP} does not take over someone \
                         else's; chown it to {} or remove it",
                        entry.uid, self.user, account.uid, self.user
                    ),
                ));
            }
            Ok(Some(entry))
        };
        let dir = check_entry(&ssh, Kind::Dir)?;
        let file = match dir {
            Some(_) => check_entry(&path, Kind::File)?,
            None => None,
        };
        let old = match file {
            Some(_) => read_bounded(&path).map_err(|e| fail(&path, e))?,
            None => String::new(),
        };
        let (new, mut lines) = edit(&old, &keys, self.absent, self.exclusive);
        let content = (new != old).then_some(new);
        if self.absent && content.is_none() {
            let what = if file.is_some() {
                "has none of the keys"
            } else {
                "is absent"
            };
            return Ok(Plan::unchanged(format!("{shown} {what}")));
        }
        // Present (or a file rewritten): the directory and file as sshd
        // wants them.
        let is_right = |e: &Entry, mode| e.mode == mode && e.gid == account.gid;
        let dir_fix = dir.as_ref().is_some_and(|e| !is_right(e, 0o700));
        let file_fix = file.as_ref().is_some_and(|e| !is_right(e, 0o600));
        if dir.is_none() {
            let needs = match account.home.is_dir() {
                true => String::new(),
                false => format!(
                    "; needs the directory {}, which must exist by then",
                    account.home.display()
                ),
            };
            lines.insert(0, format!("create {} (mode 0700){needs}", ssh.display()));
        } else if let Some(e) = dir.as_ref().filter(|_| dir_fix) {
            lines.push(format!(
                "{}: mode {:04o} group {} -> mode 0700 group {}",
                ssh.display(),
                e.mode,
                e.gid,
                account.gid
            ));
        }
        if let Some(e) = file.as_ref().filter(|_| file_fix) {
            lines.push(format!(
                "{shown}: mode {:04o} group {} -> mode 0600 group {}",
                e.mode, e.gid, account.gid
            ));
        }
        if lines.is_empty() {
            return Ok(Plan::unchanged(format!("{shown} is as described")));
        }
        if file.is_none() && content.is_some() {
            lines.insert(
                usize::from(dir.is_none()),
                format!("create {shown} (mode 0600)"),
            );
        }
        let diff = content
            .as_ref()
            .and_then(|new| diff(&shown, old.as_bytes(), new.as_bytes()));
        let summary = format!("{}: {}", self.user, lines.join(", "));
        let create_dir = dir.is_none();
        Ok(Plan::change(summary, diff, move |w| {
            if create_dir {
                w.create_dir(&ssh, 0o700)?;
            }
            if create_dir || dir_fix {
                w.set_owner(&ssh, &owner)?;
                w.set_mode(&ssh, 0o700)?;
            }
            match content {
                Some(content) => w.write_file(&path, content.as_bytes(), 0o600, &owner),
                None if file_fix => {
                    w.set_owner(&path, &owner)?;
                    w.set_mode(&path, 0o600)
                }
                None => Ok(()),
            }
        }))
    }
}

impl Plan {
    /// Runs this plan's apply step with the writer of the plan it is part
    /// of.
    fn apply_with(self, w: &Writer) -> Result<(), OpError> {
        match self.apply {
            Some(apply) => apply(w),
            None => Ok(()),
        }
    }
}

/// `text` with `keys` added (updated in place) or removed, and, when
/// `exclusive`, every other line removed but blanks and comments; and what
/// changed, a line each.
fn edit(text: &str, keys: &[Key], absent: bool, exclusive: bool) -> (String, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    let mut seen = vec![false; keys.len()];
    for line in text.lines() {
        let found = parse(line).ok();
        let wanted = found
            .as_ref()
            .and_then(|f| keys.iter().position(|k| k.same_key(f)));
        match (wanted, found) {
            (Some(i), _) if absent => changes.push(format!("remove {}", keys[i].shown())),
            (Some(i), _) if seen[i] => {
                changes.push(format!("remove a second line of {}", keys[i].shown()))
            }
            (Some(i), Some(found)) => {
                seen[i] = true;
                match found == keys[i] {
                    true => out.push(line.to_owned()),
                    false => {
                        changes.push(format!("update {}", keys[i].shown()));
                        out.push(keys[i].line());
                    }
                }
            }
            (None, found) if exclusive && !absent => {
                let bare = line.trim();
                match (bare.is_empty() || bare.starts_with('#'), found) {
                    (true, _) => out.push(line.to_owned()),
                    (false, Some(other)) => changes.push(format!("remove {}", other.shown())),
                    (false, None) => changes.push("remove a line that is not a key".into()),
                }
            }
            _ => out.push(line.to_owned()),
        }
    }
    if !absent {
        for (key, _) in keys.iter().zip(&seen).filter(|(_, seen)| !**seen) {
            changes.push(format!("add {}", key.shown()));
            out.push(key.line());
        }
    }
    let mut new = out.join("\n");
    if !new.is_empty() {
        new.push('\n');
    }
    // Untouched, the file stays byte for byte (a missing final newline too).
    if changes.is_empty() {
        return (text.to_owned(), changes);
    }
    (new, changes)
}

/// The file `path` as text, within [`MAX_FILE`], never read through a link.
fn read_bounded(path: &Path) -> Result<String, String> {
    let (dir, name) = files::parent_and_name(path).map_err(|e| describe(&e))?;
    let file = dir.open_file(&name).map_err(|e| describe(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| describe(&e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "is larger than {} MiB, the most {OP} reads: trim it",
            MAX_FILE >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("is not UTF-8 text: {OP} edits text"))
}

/// A user's IDs and home, from the password database.
#[derive(Debug)]
struct Account {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// `name`'s account (`getpwnam_r`: local files, LDAP, whatever NSS has);
/// `None` when there is none.
fn account(name: &str) -> Result<Option<Account>, String> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(name).map_err(|_| "a user name with a NUL byte".to_owned())?;
    let mut size = 16 << 10;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: the out-structs and buffer live across the call; the
        // result pointer and the strings are only read when an entry was
        // found, while the buffer lives.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut found = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            );
            if rc == libc::ERANGE && size < 1 << 20 {
                size *= 4;
                continue;
            }
            if rc != 0 {
                let e = std::io::Error::from_raw_os_error(rc);
                return Err(format!("cannot look the user up: {}", describe(&e)));
            }
            if found.is_null() {
                return Ok(None);
            }
            let home = std::ffi::CStr::from_ptr(pw.pw_dir).to_bytes();
            let home = PathBuf::from(std::ffi::OsStr::from_bytes(home));
            if !home.is_absolute() {
                return Err(format!(
                    "the home of {name} is {:?}, not an absolute path: fix the account",
                    home
                ));
            }
            return Ok(Some(Account {
                uid: pw.pw_uid,
                gid: pw.pw_gid,
                home,
            }));
        }
    }
}

/// Makes `authorized_keys` as [`AuthorizedKey`] describes it.
///
/// # Errors
/// [`OpError`] naming the user or path and what to do.
#[remote]
pub fn authorized_key(spec: AuthorizedKey, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBGmTj2Gi1bG2AQiAMvxTYXgPaE4Pk2pU6wbDr1UFtNO";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOTVeKOf6SyZw0rAAkp0YfcfpBqzIYZUKRDtrJS6AP3r";

    fn key(line: &str) -> Key {
        parse(line).unwrap()
    }

    #[test]
    fn base64_round_trips_and_refuses_what_is_not() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let text = encode64(data);
            if !data.is_empty() {
                assert_eq!(decode64(&text).unwrap(), data, "{text}");
            }
        }
        assert_eq!(encode64(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode64(b"fo"), "Zm8=");
        for bad in ["", "Zm8", "Zm9v!mFy", "Zm===", "Zm9=", "====", "Z==="] {
            assert!(decode64(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn key_lines_are_read_with_options_and_comments() {
        let k = key(&format!("ssh-ed25519 {ED} ci@build host"));
        assert_eq!(
            (k.options.as_str(), k.comment.as_str()),
            ("", "ci@build host")
        );
        let k = key(&format!(
            r#"from="10.0.0.0/8",command="echo a b" ssh-ed25519 {ED}"#
        ));
        assert_eq!(k.options, r#"from="10.0.0.0/8",command="echo a b""#);
        assert_eq!((k.kind.as_str(), k.blob.as_str()), ("ssh-ed25519", ED));
        assert_eq!(k.line(), format!(r#"{} ssh-ed25519 {ED}"#, k.options));
        // The fingerprint is ssh-keygen's.
        assert!(
            k.shown().starts_with("ssh-ed25519 SHA256:"),
            "{}",
            k.shown()
        );
        assert!(!k.shown().ends_with('='));
    }

    #[test]
    fn malformed_keys_are_refused_with_what_to_do() {
        let cases = [
            (format!("ssh-foo {ED}"), "not an OpenSSH key type"),
            ("ssh-ed25519 AAAA!!!!".to_owned(), "not valid base64"),
            (format!("ssh-rsa {ED}"), "its data is a ssh-ed25519 key"),
            ("ssh-ed25519 AAAAAAAA".to_owned(), "cut short"),
            (format!("ssh-ed25519 {ED} a\nssh-rsa x"), "line break"),
            (format!(r#"command="x ssh-ed25519 {ED}"#), "unclosed quote"),
            (String::new(), "not an OpenSSH key type"),
        ];
        for (line, want) in cases {
            let err = AuthorizedKey::new("alice", &line).validate().unwrap_err();
            assert!(err.message.contains(want), "{line:?}: {err}");
            assert_eq!(err.operation, OP);
        }
        let ok = format!("ssh-ed25519 {ED}");
        let err = AuthorizedKey::new("alice", &ok)
            .options("a b")
            .validate()
            .unwrap_err();
        assert!(err.message.contains("one field"), "{err}");
        let err = AuthorizedKey::new("alice", &ok)
            .comment("x\ny")
            .validate()
            .unwrap_err();
        assert!(err.message.contains("line break"), "{err}");
        let err = AuthorizedKey::new("-alice", &ok).validate().unwrap_err();
        assert!(err.message.contains("not a user name"), "{err}");
        let long = format!("ssh-ed25519 {ED} {}", "x".repeat(MAX_KEY_LINE));
        assert!(AuthorizedKey::new("alice", long).validate().is_err());
        // Refused at plan time, before anything is looked up.
        assert!(AuthorizedKey::new("nobody-here", "ssh-ed25519 x")
            .plan()
            .is_err());
    }

    #[test]
    fn edits_keep_other_lines_and_update_in_place() {
        let a = key(&format!("ssh-ed25519 {ED} a"));
        let b = key(&format!("no-pty ssh-ed25519 {ED2} b"));
        let file = format!("# keys\nssh-ed25519 {ED2} old\n\nssh-rsa garbage\n");
        let (new, changes) = edit(&file, &[a.clone(), b.clone()], false, false);
        assert_eq!(
            new,
            format!("# keys\nno-pty ssh-ed25519 {ED2} b\n\nssh-rsa garbage\nssh-ed25519 {ED} a\n")
        );
        assert_eq!(changes.len(), 2, "{changes:?}");
        // Converged: unchanged, byte for byte (no final newline added).
        let (again, changes) = edit(new.trim_end(), &[a.clone(), b.clone()], false, false);
        assert!(changes.is_empty());
        assert_eq!(again, new.trim_end());
        // Exclusive: comments and blanks stay, other lines go.
        let (only, changes) = edit(&new, std::slice::from_ref(&a), false, true);
        assert_eq!(only, format!("# keys\n\nssh-ed25519 {ED} a\n"));
        assert_eq!(changes.len(), 2, "{changes:?}");
        // Absent removes every line of the key.
        let doubled = format!("{}\n{}\n# end\n", a.line(), a.line());
        let (gone, changes) = edit(&doubled, std::slice::from_ref(&a), true, false);
        assert_eq!((gone.as_str(), changes.len()), ("# end\n", 2));
        // Duplicates of a wanted key collapse to the first.
        let (one, _) = edit(&doubled, std::slice::from_ref(&a), false, false);
        assert_eq!(one, format!("{}\n# end\n", a.line()));
        // Appending to a file without a final newline adds one first.
        let (appended, _) = edit("# x", std::slice::from_ref(&a), false, false);
        assert_eq!(appended, format!("# x\n{}\n", a.line()));
    }

    #[test]
    fn a_missing_user_is_a_note_in_check_mode_and_an_error_on_apply() {
        let spec = AuthorizedKey::new("cs-no-such-user", format!("ssh-ed25519 {ED} a"));
        let plan = spec.clone().plan().unwrap();
        let summary = &plan.planned().summary;
        assert!(
            summary.contains("needs user cs-no-such-user, which must exist by then"),
            "{summary}"
        );
        let checked = plan.run(Mode::Check).unwrap();
        assert!(checked.changed);
        let err = spec.clone().plan().unwrap().run(Mode::Apply).unwrap_err();
        assert!(
            err.message.contains("there is no user cs-no-such-user"),
            "{err}"
        );
        let gone = spec.absent().plan().unwrap().run(Mode::Check).unwrap();
        assert!(!gone.changed, "{gone:?}");
    }
}
