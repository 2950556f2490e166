//! How new content lands on a file, for every operation that writes one
//! ([`file`](super::file), [`line`](super::line), [`block`](super::block),
//! and `template` with its feature): validated by a command before it
//! replaces the old content, and the old content kept beside it when asked.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::{OpError, Plan};
use crate::files::Dir;

/// The builder methods `validate` and `backup` of a spec with a
/// `landing: Landing` field, documented once for all of them.
macro_rules! landing_options {
    ($spec:ident) => {
        impl $spec {
            /// New content must pass `command` before it replaces the file:
            /// written beside it and laid out under the file's own name in
            /// a private directory (mode 700) beside it, `command` runs with
            /// `%s` standing for that file (`"sshd -t -f %s"`, `"visudo -cf
            /// %s"`; its words split on blanks, no shell), and only if it
            /// exits with 0 does the new content replace the file.
            /// Otherwise the error quotes what it printed and the file is
            /// untouched. Check mode runs it too, on a copy of the same
            /// name in a private temporary directory (it only reads),
            /// within [`VALIDATE_TIME`](crate::ops::VALIDATE_TIME).
            pub fn validate(mut self, command: impl Into<String>) -> $spec {
                self.landing.validate = Some(command.into());
                self
            }

            /// The old content is kept beside the file when new content
            /// replaces it, as `NAME.<timestamp>~` (UTC,
            /// `motd.2026-12-07@03:10:12~`) with the old mode and owner;
            /// [`Change::backup`](crate::ops::Change::backup) says where.
            pub fn backup(mut self) -> $spec {
                self.landing.backup = true;
                self
            }
        }
    };
}
pub(crate) use landing_options;

/// How long a validation command may run.
pub const VALIDATE_TIME: Duration = Duration::from_secs(60);

/// What happens around the write of new content: a command that must
/// accept it first, and whether the old content is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Landing {
    /// The validation command's words; `%s` in them is the new file.
    pub validate: Option<String>,
    /// Whether the old content is kept as `NAME.<timestamp>~`.
    pub backup: bool,
}

impl Landing {
    /// Refuses a validation command that cannot work: empty, without
    /// `%s`, or with quotes (its words are split on blanks, never by a
    /// shell).
    pub(crate) fn check(&self, op: &str, shown: &str) -> Result<(), OpError> {
        let Some(command) = &self.validate else {
            return Ok(());
        };
        let refuse = |why: &str| {
            Err(OpError::new(
                op,
                shown,
                format!("validate({command:?}): {why}"),
            ))
        };
        if command.split_whitespace().next().is_none() {
            return refuse("an empty command: give the program that checks the new content");
        }
        if !command.contains("%s") {
            return refuse(
                "the command must name the new file as %s (e.g. \"sshd -t -f %s\"): it runs on \
                 the new content before it replaces the file",
            );
        }
        if command.contains(['\'', '"', '\\']) {
            return refuse(
                "its words are split on blanks and run without a shell, so quotes would reach \
                 the program as they are: leave them out (or validate with a script)",
            );
        }
        Ok(())
    }

    /// What the summary adds: the validation and the backup to come.
    pub(crate) fn note(&self, exists: bool) -> String {
        let mut note = String::new();
        if let Some(command) = &self.validate {
            note.push_str(&format!("; validated by `{command}`"));
        }
        if self.backup && exists {
            note.push_str("; the old content kept as a backup");
        }
        note
    }

    /// `plan` with, in check mode, the new `content` validated on a copy
    /// in a private temporary directory (check mode writes nothing beside
    /// the target); in apply the [`Writer`](super::Writer) validates it
    /// beside the target.
    pub(crate) fn checked(
        &self,
        plan: Plan,
        op: &str,
        shown: &str,
        content: &[u8],
        secret: bool,
    ) -> Plan {
        let mut plan = plan;
        plan.change.digest = super::digest::of(content);
        let Some(command) = self.validate.clone() else {
            return plan;
        };
        let (op, shown, content) = (op.to_owned(), shown.to_owned(), content.to_vec());
        plan.on_check(move || validate_copy(&op, &shown, &command, &content, secret))
    }
}

/// Runs the validation `command` on `file` (what `%s` stands for).
///
/// # Errors
/// When it cannot start, runs past [`VALIDATE_TIME`], or fails: the error
/// quotes its output (unless the content is secret) and says the target
/// is unchanged.
pub(crate) fn validate(
    op: &str,
    shown: &str,
    command: &str,
    file: &Path,
    secret: bool,
) -> Result<(), OpError> {
    let file = file.to_string_lossy();
    let argv: Vec<String> = command
        .split_whitespace()
        .map(|w| w.replace("%s", &file))
        .collect();
    let named = format!("`{command}`");
    let out = Program {
        argv: &argv,
        env: &[],
        cwd: None,
        shown: &named,
        timeout: Some(VALIDATE_TIME),
    }
    .output(op)
    .map_err(|e| OpError::new(op, shown, format!("validate: {}", e.message)))?;
    if out.status == 0 {
        return Ok(());
    }
    let said = match (secret, super::tools::tail(&out, 10)) {
        (true, _) => "its output is not shown, since the content is secret".to_owned(),
        (false, said) if said.is_empty() => "it printed nothing".to_owned(),
        (false, said) => said,
    };
    Err(OpError::new(
        op,
        shown,
        format!(
            "the new content fails validation: {named} exited with status {}: {said}; the \
             file is unchanged",
            out.status
        ),
    ))
}

/// Validates `content` as a file in a new private directory (mode 700)
/// under the temporary directory, removed after.
fn validate_copy(
    op: &str,
    shown: &str,
    command: &str,
    content: &[u8],
    secret: bool,
) -> Result<(), OpError> {
    let fail = |e: std::io::Error| {
        OpError::new(
            op,
            shown,
            format!(
                "cannot make a copy to validate in check mode: {}",
                crate::files::describe(&e)
            ),
        )
    };
    let dir = private_dir().map_err(fail)?;
    let name = Path::new(shown)
        .file_name()
        .unwrap_or(OsStr::new("new"))
        .to_owned();
    let file = dir.join(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| f.write_all(content));
    let result = written
        .map_err(fail)
        .and_then(|()| validate(op, shown, command, &file, secret));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A new directory only this user can enter.
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::temp_dir();
    let mut tries = 0;
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "chopsticks-validate-{}-{nanos:x}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            made => return made.map(|()| dir),
        }
    }
}

/// Validates the sealed file `temp` of `dir` (the new content of its
/// entry `name`) under the target's own name: linked as `name` into a new
/// private directory (mode 700) beside the target, for the validator to
/// read, then unlinked, whatever the validator said.
pub(crate) fn validate_beside(
    op: &str,
    shown: &str,
    command: &str,
    (dir, name, temp): (&Dir, &OsStr, &OsStr),
    secret: bool,
) -> Result<(), OpError> {
    let fail = |e: std::io::Error| {
        OpError::new(
            op,
            shown,
            format!(
                "cannot lay the new content out to validate: {}",
                crate::files::describe(&e)
            ),
        )
    };
    let private = crate::files::temp_name(name);
    dir.mkdir(&private, 0o700).map_err(fail)?;
    let laid = dir
        .sub(&private)
        .and_then(|inside| dir.link_into(temp, &inside, name).map(|()| inside))
        .map_err(fail);
    let result = laid
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| validate(op, shown, command, &dir.join(&private).join(name), secret));
    if let Ok(inside) = &laid {
        let _ = inside.unlink(name, false);
    }
    let _ = dir.unlink(&private, true);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_command_must_name_the_file_and_need_no_shell() {
        let with = |c: &str| Landing {
            validate: Some(c.into()),
            backup: false,
        };
        assert!(with("sshd -t -f %s").check("ops::file", "/etc/x").is_ok());
        let err = with("sshd -t").check("ops::file", "/etc/x").unwrap_err();
        assert!(err.message.contains("as %s"), "{err}");
        assert!(with("  ").check("ops::file", "/etc/x").is_err());
        let err = with("sh -c 'test -s %s'")
            .check("ops::file", "/x")
            .unwrap_err();
        assert!(err.message.contains("without a shell"), "{err}");
    }

    #[test]
    fn check_mode_validates_a_private_copy() {
        validate_copy(
            "ops::file",
            "/etc/app.conf",
            "grep -q ok %s",
            b"ok\n",
            false,
        )
        .unwrap();
        let err = validate_copy(
            "ops::file",
            "/etc/app.conf",
            "grep -q ok %s",
            b"no\n",
            false,
        )
        .unwrap_err();
        assert!(err.message.contains("fails validation"), "{err}");
        assert!(err.message.contains("unchanged"), "{err}");
    }
}
