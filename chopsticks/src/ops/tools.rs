//! The system's own tools, as the account, package and service operations
//! run them: found in the usual directories (an agent started over ssh may
//! lack the `sbin` ones on its `PATH`), run through a [`Writer`], their
//! failure an [`OpError`] quoting what they said.

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
