//! [`authorized_key`]: OpenSSH public keys in a user's
//! `~/.ssh/authorized_keys`.

use std::path::Path;

use serde::{Deserialize, Serialize};

mod line;

use line::{check_extra, parse, Key};

use super::text::read_bounded_text;
use super::{diff, tools, Change, Mode, OpError, Owner, Plan};
use crate::files::accounts::Account;
use crate::files::{self, describe, Entry, Kind};
use crate::remote;

const OP: &str = "ops::authorized_key";

/// The most keys one spec may give.
const MAX_KEYS: usize = 1000;

/// The largest `authorized_keys` file read, in bytes.
const MAX_FILE: usize = 4 << 20;

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
            Some(_) => read_bounded_text(OP, &path, MAX_FILE)?.unwrap_or_default(),
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
                // Written anew rather than changed in place: a hard link
                // the user made to someone else's file is replaced, never
                // handed over.
                None if file_fix => w.write_file(&path, old.as_bytes(), 0o600, &owner),
                None => Ok(()),
            }
        }))
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

/// `name`'s account (the password database: local files, LDAP, whatever
/// NSS has); `None` when there is none.
fn account(name: &str) -> Result<Option<Account>, String> {
    let found = files::accounts::user(name)
        .map_err(|e| format!("cannot look the user up: {}", describe(&e)))?;
    match found {
        Some(a) if !a.home.is_absolute() => Err(format!(
            "the home of {name} is {:?}, not an absolute path: fix the account",
            a.home
        )),
        found => Ok(found),
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
    use super::line::{decode64, encode64, MAX_KEY_LINE};
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
