//! [`git`]: a checkout of a git repository at a branch, tag or commit,
//! through the host's own `git`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{tools, Change, Mode, OpError, Plan};
use crate::files::{self, describe, Kind};
use crate::remote;

mod refs;
mod run;
mod url;

use refs::{check_ref, full_id, resolve};
use run::{find_git, Runner};
pub use url::shown as url_shown;
use url::Repo;

const OP: &str = "ops::git";

/// How long one `git` run may take unless [`Git::timeout`] says otherwise.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The revision a checkout is to be at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Version {
    /// The remote's `HEAD` (its default branch).
    Head,
    Branch(String),
    Tag(String),
    Commit(String),
}

/// A checkout of a repository at `dest`, at a branch, a tag, a commit or
/// (by default) the remote's `HEAD`, as Ansible's `git` module keeps one.
///
/// ```
/// use chopsticks::ops::Git;
/// use std::time::Duration;
///
/// let app = Git::new("https://git.example.org/app.git", "/srv/app").branch("release");
/// let pinned = Git::new("/srv/mirror/app.git", "/opt/app")
///     .commit("0123456789abcdef0123456789abcdef01234567")
///     .force()
///     .timeout(Duration::from_secs(120));
/// # let _ = (app, pinned);
/// ```
///
/// A missing `dest` is cloned; an existing checkout is fetched and moved
/// to the wanted commit, and is `changed` only when its `HEAD` moves. The
/// plan names the old and the new commit, found without writing: a
/// branch's or tag's commit with `git ls-remote`, a full commit id as
/// given (an abbreviated one is refused: give all 40 characters).
///
/// Tracked files changed in the checkout (what `git status --porcelain`
/// lists) refuse an update unless [`force`](Git::force), which discards
/// them (`checkout --force`, `reset --hard`); so do untracked files in the
/// way of the new commit's (git keeps them, and says which). A branch is
/// checked out as a local branch of that name; a tag or commit as a
/// detached `HEAD`: a checkout at the right commit on another branch (or
/// detached) is moved onto the right one.
///
/// The repository is a URL (`https://`, `ssh://`, `file://`, git's
/// `user@host:path`) or an absolute path on the host: a relative path is
/// refused, as `git` would read it from another directory when it clones
/// than when it fetches.
///
/// `git` runs without prompts (`GIT_TERMINAL_PROMPT=0`, no askpass
/// program, `SSH_ASKPASS_REQUIRE=never`): a repository that needs a
/// password fails instead of hanging. Each `git` run is killed after 10
/// minutes (see [`timeout`](Git::timeout)). A checkout owned by another
/// user than the one the agent runs as is refused: git itself refuses it
/// (`safe.directory`), and its configuration could run programs as the
/// agent's user.
///
/// A password in a `scheme://user:password@host/...` URL is never shown
/// (`***`), and never given to `git` on its command line nor written to
/// the checkout's `.git/config`: `git` gets the URL without it, and the
/// user and password through the environment of its own process, as the
/// answer of a credential helper given there (the host's configured
/// helpers are not asked, so none stores it). It is still in this spec,
/// which travels to the host with the call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Git {
    repo: String,
    dest: PathBuf,
    version: Version,
    force: bool,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Git {
    /// As derived, but a password in the repository URL is hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("repo", &url::shown(&self.repo))
            .field("dest", &self.dest)
            .field("version", &self.version)
            .field("force", &self.force)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Git {
    /// A checkout of `repo` (a URL or a path on the host) at `dest`, at the
    /// remote's `HEAD` unless a branch, tag or commit is given.
    pub fn new(repo: impl Into<String>, dest: impl Into<PathBuf>) -> Git {
        Git {
            repo: repo.into(),
            dest: super::paths::plain(dest.into()),
            version: Version::Head,
            force: false,
            timeout: None,
        }
    }

    /// At the tip of the branch `name` (checked out as a local branch).
    pub fn branch(mut self, name: impl Into<String>) -> Git {
        self.version = Version::Branch(name.into());
        self
    }

    /// At the tag `name` (a detached `HEAD`).
    pub fn tag(mut self, name: impl Into<String>) -> Git {
        self.version = Version::Tag(name.into());
        self
    }

    /// At the commit `id`, all 40 (or, in a SHA-256 repository, 64) hex
    /// digits of it (a detached `HEAD`).
    pub fn commit(mut self, id: impl Into<String>) -> Git {
        self.version = Version::Commit(id.into().to_ascii_lowercase());
        self
    }

    /// Discard changes to tracked files instead of refusing to update.
    pub fn force(mut self) -> Git {
        self.force = true;
        self
    }

    /// Kills a `git` run (and fails) that takes longer than `limit`
    /// (default 10 minutes).
    pub fn timeout(mut self, limit: Duration) -> Git {
        self.timeout = Some(limit);
        self
    }

    fn error(&self, message: impl Into<String>) -> OpError {
        OpError::new(OP, self.dest.display(), message)
    }

    /// Refuses what git could read as an option, a relative repository
    /// path, and malformed names; the repository, split.
    fn validate(&self) -> Result<Repo, OpError> {
        let repo = Repo::parse(&self.repo).map_err(|e| self.error(e))?;
        if !self.dest.is_absolute() {
            return Err(self.error("dest is not an absolute path: give the full path"));
        }
        match &self.version {
            Version::Head => Ok(()),
            Version::Branch(b) => check_ref("branch", b).map_err(|e| self.error(e)),
            Version::Tag(t) => check_ref("tag", t).map_err(|e| self.error(e)),
            Version::Commit(c) if full_id(c) => Ok(()),
            Version::Commit(c) => Err(self.error(format!(
                "{c:?} is not a full commit id: give all 40 hex digits (git rev-parse {c} \
                 prints them)"
            ))),
        }?;
        Ok(repo)
    }

    /// What making the checkout so would change.
    ///
    /// # Errors
    /// A malformed repository, dest or name; no `git` on the host; `dest`
    /// holding something else than a checkout, or another user's; a
    /// branch or tag the remote does not have; changed tracked files
    /// without [`force`](Git::force); a `git` run that fails or times out.
    pub fn plan(self) -> Result<Plan, OpError> {
        let repo = self.validate()?;
        let runner = Runner {
            git: find_git().ok_or_else(|| {
                let host = crate::facts::hostname().unwrap_or_else(|_| "this host".into());
                self.error(format!(
                    "git is not installed on {host}: install it first (ops::package with \
                     Package::new(\"git\")), or put it on the agent's PATH"
                ))
            })?,
            timeout: self.timeout.unwrap_or(TIMEOUT),
            login: repo.env(),
            secret: repo.login.as_ref().map(|(_, p)| p.clone()),
        };
        let dest = self.dest.clone();
        let shown = dest.display().to_string();
        let checkout = self.existing()?;
        let (want, branch) = self.wanted(&runner, &repo.plain)?;
        let at = match &branch {
            Some(b) => format!("{want} (branch {b})"),
            None => want.clone(),
        };
        let url = repo.plain;
        if !checkout {
            let summary = format!("clone {} into {shown} at {at}", url::shown(&self.repo));
            return Ok(Plan::change(summary, None, move |w| {
                let dest_arg = dest.display().to_string();
                runner.write(w, None, &["clone", "--no-checkout", "--", &url, &dest_arg])?;
                // Nothing is checked out yet: nothing local to lose.
                runner.move_to(w, &dest, &want, branch.as_deref(), true)
            }));
        }
        let head = runner
            .read(
                Some(&dest),
                &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            )?
            .stdout
            .trim()
            .to_owned();
        let on = runner
            .read(Some(&dest), &["symbolic-ref", "--quiet", "HEAD"])?
            .stdout
            .trim()
            .strip_prefix("refs/heads/")
            .map(str::to_owned);
        let status = runner.read(
            Some(&dest),
            &["status", "--porcelain", "--untracked-files=no"],
        )?;
        let modified: Vec<&str> = status
            .stdout
            .lines()
            .map(|l| l.get(3..).unwrap_or(l))
            .collect();
        let mods = match modified.len() {
            0 => String::new(),
            n => format!(
                "{n} changed tracked file(s): {}{}",
                modified
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > 5 { ", ..." } else { "" }
            ),
        };
        // At the commit, and on the branch wanted (or detached, for a tag
        // or a commit).
        if head == want && on == branch {
            return Ok(match (modified.is_empty(), self.force) {
                (true, _) => Plan::unchanged(format!("{shown} is at {at}")),
                (false, false) => {
                    Plan::unchanged(format!("{shown} is at {at}; it has {mods} (kept)"))
                }
                (false, true) => Plan::change(
                    format!("{shown} is at {at}: discard {mods}"),
                    None,
                    move |w| {
                        runner
                            .write(w, Some(&dest), &["reset", "--hard", "--quiet"])
                            .map(drop)
                    },
                ),
            });
        }
        if !modified.is_empty() && !self.force {
            return Err(self.error(format!(
                "has {mods}: commit or discard them, or force() to discard them, before it \
                 moves from {head} to {at}"
            )));
        }
        let discard = match modified.is_empty() {
            true => String::new(),
            false => format!(", discarding {mods}"),
        };
        let mut old = match head.is_empty() {
            true => "no commit".to_owned(),
            false => head.clone(),
        };
        if head == want {
            // Only the branch differs: say which it is on now.
            old = match &on {
                Some(b) => format!("{old} (branch {b})"),
                None => format!("{old} (detached)"),
            };
        }
        let summary = format!("{shown}: {old} -> {at}{discard}");
        let fetch = self.refspec(branch.as_deref());
        let force = self.force;
        Ok(Plan::change(summary, None, move |w| {
            let have = runner.read(
                Some(&dest),
                &["cat-file", "-e", &format!("{want}^{{commit}}")],
            );
            if !have.is_ok_and(|o| o.status == 0) {
                let mut argv = vec!["fetch", "--quiet", "--", &url];
                argv.extend(fetch.iter().map(String::as_str));
                runner.write(w, Some(&dest), &argv)?;
            }
            runner.move_to(w, &dest, &want, branch.as_deref(), force)
        }))
    }

    /// What a fetch asks for: the branch or tag, or for a commit every
    /// branch and tag.
    fn refspec(&self, branch: Option<&str>) -> Vec<String> {
        match (&self.version, branch) {
            (Version::Tag(t), _) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
            (_, Some(b)) => vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")],
            _ => vec![
                "+refs/heads/*:refs/remotes/origin/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ],
        }
    }

    /// Whether `dest` holds a checkout; `false` when it is missing or an
    /// empty directory (to clone into).
    ///
    /// # Errors
    /// Something else is there, or another user's.
    fn existing(&self) -> Result<bool, OpError> {
        let entry = files::entry_at(&self.dest).map_err(|e| self.error(describe(&e)))?;
        let Some(entry) = entry else { return Ok(false) };
        match entry.kind {
            Kind::Dir => {}
            Kind::Link => {
                return Err(self.error(
                    "is a symbolic link: ops::git does not write through one; give the path \
                     it points to",
                ))
            }
            _ => return Err(self.error("is not a directory: remove it, or choose another dest")),
        }
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let git_dir =
            files::entry_at(&self.dest.join(".git")).map_err(|e| self.error(describe(&e)))?;
        for (what, owner) in [
            ("it", Some(entry.uid)),
            ("its .git", git_dir.map(|e| e.uid)),
        ] {
            if let Some(uid) = owner.filter(|u| *u != me) {
                return Err(self.error(format!(
                    "{what} is owned by uid {uid}, not by the user this runs as (uid {me}): \
                     git refuses such a checkout (safe.directory), and its configuration \
                     could run programs as uid {me}; connect as its owner, or chown it"
                )));
            }
        }
        if git_dir.is_some() {
            return Ok(true);
        }
        let empty = files::parent_and_name(&self.dest)
            .and_then(|(dir, name)| dir.sub(&name)?.list())
            .map_err(|e| self.error(describe(&e)))?
            .is_empty();
        match empty {
            true => Ok(false),
            false => Err(self.error(
                "exists and is not a git checkout (no .git): remove it, or choose another dest",
            )),
        }
    }

    /// The commit to be at, and the local branch to be on (`None`:
    /// detached), looked up on the remote without fetching.
    fn wanted(&self, runner: &Runner, url: &str) -> Result<(String, Option<String>), OpError> {
        let repo = url::shown(&self.repo);
        let (patterns, branch): (Vec<String>, Option<String>) = match &self.version {
            Version::Commit(c) => return Ok((c.clone(), None)),
            Version::Head => (vec!["HEAD".into()], None),
            Version::Branch(b) => (vec![format!("refs/heads/{b}")], Some(b.clone())),
            Version::Tag(t) => (
                vec![format!("refs/tags/{t}"), format!("refs/tags/{t}^{{}}")],
                None,
            ),
        };
        let mut argv = vec!["ls-remote"];
        if self.version == Version::Head {
            argv.push("--symref");
        }
        argv.extend(["--", url]);
        argv.extend(patterns.iter().map(String::as_str));
        let out = runner.read(None, &argv)?;
        if out.status != 0 {
            return Err(self.error(format!(
                "cannot read {repo} (git ls-remote exited with {}): {}; check the URL and \
                 that this host may read it without a prompt",
                out.status,
                runner.hide(&tools::tail(&out, 3))
            )));
        }
        let (id, branch) = resolve(&out.stdout, &patterns, branch);
        match id {
            Some(id) => Ok((id, branch)),
            None => Err(self.error(match &self.version {
                Version::Branch(b) => format!("{repo} has no branch {b}: check its name"),
                Version::Tag(t) => format!("{repo} has no tag {t}: check its name"),
                _ => format!("{repo} has no HEAD (an empty repository?): give a branch"),
            })),
        }
    }
}

/// Makes a checkout as [`Git`] describes it.
///
/// # Errors
/// [`OpError`] naming the dest (or the `git` run) and what to do.
#[remote]
pub fn git(spec: Git, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn names_git_could_read_as_options_are_refused() {
        let err = |spec: Git| spec.validate().unwrap_err().message;
        assert!(err(Git::new("-uhack", "/srv/a")).contains("starts with -"));
        assert!(err(Git::new("/r", "/srv/a").branch("-b")).contains("not a branch name"));
        assert!(err(Git::new("/r", "/srv/a").tag("--x")).contains("not a tag name"));
        for bad in ["a b", "a..b", "a:b", "x.lock", "", "a\nb", "@{u}"] {
            assert!(
                err(Git::new("/r", "/srv/a").branch(bad)).contains("not a branch"),
                "{bad:?}"
            );
        }
        assert!(err(Git::new("/r", "srv/a")).contains("absolute"));
        let short = err(Git::new("/r", "/srv/a").commit("abc1234"));
        assert!(short.contains("not a full commit id"), "{short}");
        Git::new("/r", "/srv/a")
            .commit(ID.to_uppercase())
            .validate()
            .unwrap();
        Git::new("/r", "/srv/a")
            .branch("release/1.2")
            .validate()
            .unwrap();
    }

    #[test]
    fn passwords_in_urls_are_never_shown() {
        let url = "https://ci:s3cr3t@git.example.org/app.git";
        assert_eq!(url::shown(url), "https://ci:***@git.example.org/app.git");
        assert_eq!(url::shown("git@host:app.git"), "git@host:app.git");
        assert_eq!(url::shown("https://ci@host/a"), "https://ci@host/a");
        let spec = Git::new(url, "/srv/app");
        assert!(!format!("{spec:?}").contains("s3cr3t"));
        // What git's command line gets: the URL without the password.
        let repo = spec.validate().unwrap();
        assert_eq!(repo.plain, "https://ci@git.example.org/app.git");
        let err = Git::new(format!("-{url}"), "/srv/app")
            .validate()
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
