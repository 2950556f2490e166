//! The system's own tools, as the account, package and service operations
//! run them: found in the usual directories (an agent started over ssh may
//! lack the `sbin` ones on its `PATH`), given only names they cannot read
//! as options (checked here, and after `--`), run through a [`Writer`],
//! their failure an [`OpError`] quoting what they said.

use std::path::{Path, PathBuf};

use super::{CommandOutput, OpError, Writer};

/// Where system tools live.
const DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The path of the tool `name`, if the host has it.
pub(super) fn tool(name: &str) -> Option<PathBuf> {
    DIRS.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The first of `tools` the host has, or an error naming them and `install`
/// (what provides them).
pub(super) fn one_of(
    op: &str,
    target: &str,
    tools: &[&str],
    install: &str,
) -> Result<String, OpError> {
    tools
        .iter()
        .find_map(|t| tool(t))
        .map(|p| p.display().to_string())
        .ok_or_else(|| {
            OpError::new(
                op,
                target,
                format!("this host has none of {}: {install}", tools.join(", ")),
            )
        })
}

/// Refuses an account name (of a user or a group) that a tool could read
/// as an option, or that `/etc/passwd` and `/etc/group` cannot hold: 1 to
/// 32 of `A-Z a-z 0-9 . _ -`, not starting with `-` or `.`, a trailing `$`
/// allowed (machine accounts), not all digits (a number reads as an ID).
pub(super) fn account_name(op: &str, what: &str, name: &str) -> Result<(), OpError> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let valid = (1..=32).contains(&name.len())
        && !body.is_empty()
        && !body.starts_with(['-', '.'])
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !body.chars().all(|c| c.is_ascii_digit());
    match valid {
        true => Ok(()),
        false => Err(OpError::new(
            op,
            format!("{name:?}"),
            format!(
                "not a {what} name: 1 to 32 of A-Z a-z 0-9 . _ -, not starting with - or ., \
                 not all digits (a trailing $ is allowed)"
            ),
        )),
    }
}

/// Refuses a path for `/etc/passwd` (a home, a shell) that is not absolute
/// or that the file cannot hold (`:`, control characters).
pub(super) fn passwd_path(op: &str, target: &str, what: &str, path: &str) -> Result<(), OpError> {
    if path.starts_with('/') && !path.contains(':') && !path.contains(char::is_control) {
        return Ok(());
    }
    Err(OpError::new(
        op,
        target,
        format!("the {what} {path:?} is not an absolute path without `:` or control characters"),
    ))
}

/// The last `n` lines of a tool's stderr (or stdout, when stderr is
/// empty), joined with ` / `.
pub(super) fn tail(out: &CommandOutput, n: usize) -> String {
    let text = match out.stderr.trim() {
        "" => out.stdout.trim(),
        err => err,
    };
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Runs a tool with `env` added; its failure is the operation's error,
/// quoting the end of what it said.
pub(super) fn run(
    w: &Writer,
    op: &str,
    target: &str,
    argv: Vec<String>,
    env: &[(String, String)],
) -> Result<CommandOutput, OpError> {
    let out = w.run(&argv, env, None)?;
    if out.status != 0 {
        return Err(OpError::new(
            op,
            target,
            format!(
                "`{}` exited with status {}: {}",
                argv.join(" "),
                out.status,
                tail(&out, 5)
            ),
        ));
    }
    Ok(out)
}
