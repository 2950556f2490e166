//! The system's own tools, as the account, package, service, download and
//! git operations run them: found on `PATH`, then in the usual directories
//! (an agent started over ssh may lack the `sbin` ones on its `PATH`), given only names they cannot read
//! as options (checked here, and after `--`), run through a [`Writer`],
//! their failure an [`OpError`] quoting what they said.

use std::path::PathBuf;

use super::{CommandOutput, OpError, Writer};

/// Where system tools live, looked in after `PATH`.
const DIRS: &[&str] = &["/usr/local/bin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The path of the tool `name`, if the host has it: an executable file in
/// an absolute directory of `PATH` (a relative one would depend on the
/// agent's working directory), else in [`DIRS`].
pub(super) fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    tool_in(name, &path)
}

fn tool_in(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .chain(DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_on_path_then_in_the_usual_places() {
        let dir = std::env::temp_dir().join(format!("cs-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mine = dir.join("cs-tool-test");
        std::fs::write(&mine, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["relative/bin".as_ref(), dir.as_path()]).unwrap();
        assert_eq!(tool_in("cs-tool-test", &path), Some(mine.clone()));
        // Not executable: not a tool.
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tool_in("cs-tool-test", &path), None);
        // A relative PATH entry is not looked in; the usual places are.
        assert_eq!(
            tool_in("sh", "bin".as_ref()).map(|p| p.is_absolute()),
            Some(true)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
