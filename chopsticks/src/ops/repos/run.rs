//! Running the host's `git` for [`git`](super::git): found as every
//! system tool is ([`tools::tool`]), never prompting, within a time limit, a password
//! in the URL hidden from what it says.

use std::path::Path;
use std::time::Duration;

use super::OP;
use crate::ops::process::Program;
use crate::ops::{tools, CommandOutput, OpError, Writer};

/// Runs `git` for a plan: reads directly, writes through a [`Writer`];
/// never prompting, within its time limit.
pub(super) struct Runner {
    pub git: String,
    pub timeout: Duration,
    /// The environment that gives `git` the repository's password
    /// ([`Repo::env`](super::url::Repo::env)).
    pub login: Vec<(String, String)>,
    /// A password in the repository URL, hidden from errors.
    pub secret: Option<String>,
}

impl Runner {
    pub(super) fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GIT_ASKPASS", ""),
            ("SSH_ASKPASS_REQUIRE", "never"),
            // `status` refreshes no index while planning.
            ("GIT_OPTIONAL_LOCKS", "0"),
            ("LC_ALL", "C"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(self.login.iter().cloned());
        env
    }

    pub(super) fn argv(&self, dir: Option<&Path>, args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.git.clone(), "-c".into(), "core.askPass=".into()];
        if let Some(dir) = dir {
            argv.extend(["-C".into(), dir.display().to_string()]);
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    pub(super) fn hide(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) => text.replace(secret.as_str(), "***"),
            None => text.to_owned(),
        }
    }

    pub(super) fn program<'a>(
        &self,
        argv: &'a [String],
        env: &'a [(String, String)],
        shown: &'a str,
    ) -> Program<'a> {
        Program {
            argv,
            env,
            cwd: None,
            shown,
            timeout: Some(self.timeout),
        }
    }

    /// Runs a `git` that only reads (planning, in check mode too).
    pub(super) fn read(&self, dir: Option<&Path>, args: &[&str]) -> Result<CommandOutput, OpError> {
        let argv = self.argv(dir, args);
        let env = self.env();
        let shown = self.hide(&format!("`git {}`", args.join(" ")));
        self.program(&argv, &env, &shown).output(OP)
    }

    /// Runs a `git` that writes; its failure is the operation's error.
    pub(super) fn write(
        &self,
        w: &Writer,
        dir: Option<&Path>,
        args: &[&str],
    ) -> Result<CommandOutput, OpError> {
        let argv = self.argv(dir, args);
        let env = self.env();
        let shown = self.hide(&format!("`git {}`", args.join(" ")));
        let out = w.exec(self.program(&argv, &env, &shown), OP)?;
        if out.status != 0 {
            return Err(OpError::new(
                OP,
                &shown,
                format!(
                    "exited with status {}: {}",
                    out.status,
                    self.hide(&tools::tail(&out, 5))
                ),
            ));
        }
        Ok(out)
    }

    /// Checks out `id`: on the local branch `branch` (made or moved
    /// there), or detached. Only with `force` (a fresh clone, or
    /// [`Git::force`](super::Git::force)) over files in the way: otherwise
    /// git refuses to overwrite them, and so does this.
    pub(super) fn move_to(
        &self,
        w: &Writer,
        dest: &Path,
        id: &str,
        branch: Option<&str>,
        force: bool,
    ) -> Result<(), OpError> {
        let mut args = vec!["checkout", "--quiet"];
        if force {
            args.push("--force");
        }
        match branch {
            Some(b) => args.extend(["-B", b, id, "--"]),
            None => args.extend(["--detach", id, "--"]),
        }
        match self.write(w, Some(dest), &args) {
            Err(e) if !force && e.message.contains("would be overwritten") => Err(OpError::new(
                OP,
                dest.display(),
                format!(
                    "files in the checkout are in the way of {id}, and git keeps them ({}): \
                     move them away, or force() to overwrite them",
                    e.message
                ),
            )),
            done => done.map(drop),
        }
    }
}

/// The host's `git`: on `PATH`, or in the usual directories.
pub(super) fn find_git() -> Option<String> {
    tools::tool("git").map(|p| p.display().to_string())
}
