//! Operations on paths: [`file`], [`directory`], [`symlink`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::landing::{landing_options, Landing};
use super::write::owner_options;
use super::{diff, Change, Mode, OpError, Owner, Plan};
use crate::files::{self, describe, Entry, Kind};
use crate::remote;

/// `path` without trailing slashes or `.` parts: `/srv/data/` names the
/// link `/srv/data` itself, not the directory it points to.
pub(crate) fn plain(path: PathBuf) -> PathBuf {
    path.components().collect()
}

/// What is at `path` now (not following a link there, nor one on the way
/// that someone else owns); `None` when nothing.
pub(super) fn current(op: &str, path: &Path) -> Result<Option<Entry>, OpError> {
    files::entry_at(path).map_err(|e| OpError::new(op, path.display(), describe(&e)))
}

/// An owner with the current IDs where the spec names none and the
/// writer's would differ: a rewritten file keeps the owner it had, and a
/// file the writer owns needs no chown.
pub(crate) fn owner_or_current(owner: &Owner, meta: &Entry) -> Owner {
    // SAFETY: geteuid and getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    Owner {
        user: owner
            .user
            .clone()
            .or((meta.uid != uid).then(|| meta.uid.to_string())),
        group: owner
            .group
            .clone()
            .or((meta.gid != gid).then(|| meta.gid.to_string())),
    }
}

/// What creating `path` needs that is not there now (its directory, the
/// owner's names), as a note for the plan's summary: an earlier step of
/// the same run may make it, so check mode does not refuse.
pub(super) fn needs(path: &Path, owner: &Owner) -> String {
    let mut missing = Vec::new();
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !dir.is_dir() {
            missing.push(format!("the directory {}", dir.display()));
        }
    }
    if owner.ids("", path).is_err() {
        missing.push("the owner or group it names".to_owned());
    }
    match missing.is_empty() {
        true => String::new(),
        false => format!(
            "; needs {}, which must exist by then",
            missing.join(" and ")
        ),
    }
}

/// The owner and mode changes of an existing path, as summary lines.
pub(super) fn meta_changes(
    op: &str,
    path: &Path,
    meta: &Entry,
    mode: Option<u32>,
    owner: &Owner,
    lines: &mut Vec<String>,
) -> Result<(Option<u32>, bool), OpError> {
    let mut owner_changes = false;
    match owner.ids(op, path) {
        Ok(ids) => {
            if let Some(uid) = ids.uid.filter(|u| *u != meta.uid) {
                lines.push(format!("owner {} -> {uid}", meta.uid));
                owner_changes = true;
            }
            if let Some(gid) = ids.gid.filter(|g| *g != meta.gid) {
                lines.push(format!("group {} -> {gid}", meta.gid));
                owner_changes = true;
            }
        }
        // An earlier step may create the user or group.
        Err(_) => {
            lines.push("owner or group as named, which must exist by then".to_owned());
            owner_changes = true;
        }
    }
    let now = meta.mode;
    let mode = mode.filter(|m| *m != now);
    if let Some(mode) = mode {
        lines.push(format!("mode {now:04o} -> {mode:04o}"));
    }
    Ok((mode, owner_changes))
}

/// A regular file: its content, mode and owner, or its absence.
///
/// ```
/// let motd = chopsticks::ops::File::new("/etc/motd")
///     .content("Welcome\n")
///     .mode(0o644)
///     .owner("root")
///     .group("root");
/// let token = chopsticks::ops::File::new("/etc/app/token").content("s3cr3t").secret();
/// let gone = chopsticks::ops::File::new("/etc/app/old.conf").absent();
/// # let _ = (motd, token, gone);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    path: PathBuf,
    content: Option<Vec<u8>>,
    absent: bool,
    mode: Option<u32>,
    owner: Owner,
    secret: bool,
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    landing: Landing,
}

/// The content shows as its length only: a secret's spec may be logged.
impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field(
                "content",
                &self.content.as_ref().map(|c| format!("{} bytes", c.len())),
            )
            .field("absent", &self.absent)
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .field("secret", &self.secret)
            .field("follow", &self.follow)
            .field("validate", &self.landing.validate)
            .field("backup", &self.landing.backup)
            .finish()
    }
}

impl File {
    /// The file at `path`: present, with whatever content it has (an empty
    /// file when missing) until [`content`](File::content) says otherwise.
    pub fn new(path: impl Into<PathBuf>) -> File {
        File {
            path: plain(path.into()),
            content: None,
            absent: false,
            mode: None,
            owner: Owner::default(),
            secret: false,
            follow: false,
            landing: Landing::default(),
        }
    }

    /// Whether a symbolic link at the path is followed: `false` (the
    /// default) refuses a link rather than replace it with a file or write
    /// where it points; `true` manages the file it points to (through a
    /// chain of links too, each followed only when root or this program's
    /// user owns it: someone else's link is theirs to swap).
    pub fn follow(mut self, follow: bool) -> File {
        self.follow = follow;
        self
    }

    /// Its content (text or bytes; render templates with ordinary Rust).
    pub fn content(mut self, content: impl AsRef<[u8]>) -> File {
        self.content = Some(content.as_ref().to_vec());
        self
    }

    /// Its permission bits (new files: `0o644` unless given).
    pub fn mode(mut self, mode: u32) -> File {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The content is secret: a change shows as changed, never as a diff.
    pub fn secret(mut self) -> File {
        self.secret = true;
        self
    }

    /// The file must not exist (it is removed).
    pub fn absent(mut self) -> File {
        self.absent = true;
        self
    }

    /// What making the file so would change.
    ///
    /// # Errors
    /// When the path holds something else (a directory, a link), a named
    /// owner does not exist, or the file cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        self.plan_as("ops::file")
    }

    /// [`plan`](File::plan), its errors naming the operation `op`
    /// (`ops::template`).
    pub(crate) fn plan_as(self, op: &'static str) -> Result<Plan, OpError> {
        let path = match self.follow {
            true => files::follow_at(&self.path)
                .map_err(|e| OpError::new(op, self.path.display(), describe(&e)))?,
            false => self.path.clone(),
        };
        let shown = match path == self.path {
            true => path.display().to_string(),
            false => format!("{} (-> {})", self.path.display(), path.display()),
        };
        self.landing.check(op, &shown)?;
        let meta = current(op, &path)?;
        if let Some(meta) = &meta {
            let what = match meta.kind {
                Kind::Dir => Some("is a directory: ops::file does not replace one (remove it with ops::directory(..).absent())"),
                Kind::Link => Some("is a symbolic link: ops::file does not replace a link with a file unasked (follow(true) manages the file it points to; ops::symlink manages the link)"),
                Kind::Other => Some("is not a regular file"),
                Kind::File => None,
            };
            if let Some(what) = what {
                return Err(OpError::new(op, &shown, what));
            }
        }
        if self.absent {
            return Ok(match meta {
                None => Plan::unchanged(format!("{shown} is absent")),
                Some(_) => Plan::change(format!("remove {shown}"), None, move |w| {
                    w.remove_file(&path)
                }),
            });
        }
        let Some(meta) = meta else {
            let content = self.content.unwrap_or_default();
            let mode = self.mode.unwrap_or(0o644);
            // What an earlier step may yet make (the owner, the directory)
            // is noted, not refused: apply fails if it is still missing.
            let needs = needs(&path, &self.owner);
            let diff = (!self.secret)
                .then(|| diff(&shown, b"", &content))
                .flatten();
            let summary = format!(
                "create {shown} ({} bytes, mode {mode:04o}){needs}{}",
                content.len(),
                self.landing.note(false)
            );
            let owner = self.owner;
            let (landing, secret) = (self.landing, self.secret);
            let checked = |plan| landing.checked(plan, op, &shown, &content, secret);
            let plan = checked(Plan::change(summary, diff, {
                let (landing, content) = (landing.clone(), content.clone());
                move |w| w.land(op, &path, &content, (mode, &owner), &landing, secret)
            }));
            return Ok(plan);
        };
        let mut lines = Vec::new();
        let mut diff_text = None;
        let mut new_content = None;
        if let Some(content) = self.content {
            let old = files::read_at(&path).map_err(|e| OpError::new(op, &shown, describe(&e)))?;
            if old != content {
                lines.push(if self.secret {
                    "content changed (secret)".to_owned()
                } else {
                    format!("content changed ({} -> {} bytes)", old.len(), content.len())
                });
                if !self.secret {
                    diff_text = diff(&shown, &old, &content);
                }
                new_content = Some(content);
            }
        }
        let (mode, owner_changes) =
            meta_changes(op, &path, &meta, self.mode, &self.owner, &mut lines)?;
        if lines.is_empty() {
            return Ok(Plan::unchanged(format!("{shown} is as described")));
        }
        let now = meta.mode;
        let owner = owner_or_current(&self.owner, &meta);
        let (landing, secret) = (self.landing, self.secret);
        let note = match new_content {
            Some(_) => landing.note(true),
            None => String::new(),
        };
        let checking = new_content.clone();
        let plan = Plan::change(format!("{shown}: {}{note}", lines.join(", ")), diff_text, {
            let landing = landing.clone();
            move |w| match new_content {
                Some(content) => w.land(
                    op,
                    &path,
                    &content,
                    (mode.unwrap_or(now), &owner),
                    &landing,
                    secret,
                ),
                None => {
                    if owner_changes {
                        w.set_owner(&path, &owner)?;
                    }
                    w.set_mode(&path, mode.unwrap_or(now))
                }
            }
        });
        Ok(match checking {
            Some(content) => landing.checked(plan, op, &shown, &content, secret),
            None => plan,
        })
    }
}

landing_options!(File);

#[cfg(feature = "template")]
impl File {
    /// The file landing as `landing` says (what a template passes on).
    pub(crate) fn landed(mut self, landing: Landing) -> File {
        self.landing = landing;
        self
    }
}

/// Makes a file as [`File`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn file(spec: File, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// A directory: its mode and owner, or its absence (with all it holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    path: PathBuf,
    absent: bool,
    mode: Option<u32>,
    owner: Owner,
}

impl Directory {
    /// The directory at `path`, present (its parent must exist).
    pub fn new(path: impl Into<PathBuf>) -> Directory {
        Directory {
            path: plain(path.into()),
            absent: false,
            mode: None,
            owner: Owner::default(),
        }
    }

    /// Its permission bits (new directories: `0o755` unless given).
    pub fn mode(mut self, mode: u32) -> Directory {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// The directory must not exist: it is removed with all it holds.
    pub fn absent(mut self) -> Directory {
        self.absent = true;
        self
    }

    /// What making the directory so would change.
    ///
    /// # Errors
    /// When the path holds something else, or a named owner does not exist.
    pub fn plan(self) -> Result<Plan, OpError> {
        const OP: &str = "ops::directory";
        let path = self.path;
        let shown = path.display().to_string();
        let meta = current(OP, &path)?;
        if meta.as_ref().is_some_and(|m| m.kind != Kind::Dir) {
            return Err(OpError::new(
                OP,
                &shown,
                "is not a directory: remove it first (ops::file(..).absent(), or \
                 ops::symlink(..).absent() for a link)",
            ));
        }
        if self.absent {
            return Ok(match meta {
                None => Plan::unchanged(format!("{shown} is absent")),
                Some(_) => {
                    let entries = files::parent_and_name(&path)
                        .and_then(|(dir, name)| dir.sub(&name)?.list())
                        .map_or(0, |names| names.len());
                    Plan::change(
                        format!("remove {shown} and the {entries} entries in it"),
                        None,
                        move |w| w.remove_dir_all(&path),
                    )
                }
            });
        }
        let Some(meta) = meta else {
            let mode = self.mode.unwrap_or(0o755);
            let needs = needs(&path, &self.owner);
            let owner = self.owner;
            return Ok(Plan::change(
                format!("create {shown} (mode {mode:04o}){needs}"),
                None,
                move |w| {
                    w.create_dir(&path, mode)?;
                    if owner.user.is_some() || owner.group.is_some() {
                        w.set_owner(&path, &owner)?;
                        w.set_mode(&path, mode)?;
                    }
                    Ok(())
                },
            ));
        };
        let mut lines = Vec::new();
        let (mode, owner_changes) =
            meta_changes(OP, &path, &meta, self.mode, &self.owner, &mut lines)?;
        if lines.is_empty() {
            return Ok(Plan::unchanged(format!("{shown} is as described")));
        }
        let now = meta.mode;
        let owner = self.owner;
        Ok(Plan::change(
            format!("{shown}: {}", lines.join(", ")),
            None,
            move |w| {
                if owner_changes {
                    w.set_owner(&path, &owner)?;
                }
                w.set_mode(&path, mode.unwrap_or(now))
            },
        ))
    }
}

/// Makes a directory as [`Directory`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn directory(spec: Directory, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// A symbolic link to a target, or its absence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    path: PathBuf,
    target: PathBuf,
    absent: bool,
}

impl Symlink {
    /// `path` must be a link to `target` (which need not exist).
    pub fn new(path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Symlink {
        Symlink {
            path: plain(path.into()),
            target: target.into(),
            absent: false,
        }
    }

    /// The link must not exist (it is removed; its target is not touched).
    pub fn absent(mut self) -> Symlink {
        self.absent = true;
        self
    }

    /// What making the link so would change.
    ///
    /// # Errors
    /// When the path holds something that is not a link.
    pub fn plan(self) -> Result<Plan, OpError> {
        const OP: &str = "ops::symlink";
        let Symlink {
            path,
            target,
            absent,
        } = self;
        let shown = path.display().to_string();
        let meta = current(OP, &path)?;
        if meta.as_ref().is_some_and(|m| m.kind != Kind::Link) {
            return Err(OpError::new(
                OP,
                &shown,
                "is not a symbolic link: ops::symlink does not replace files or directories; \
                 remove it first",
            ));
        }
        let now = meta.and_then(|_| {
            let (dir, name) = files::parent_and_name(&path).ok()?;
            dir.readlink(&name).ok()
        });
        Ok(match (absent, now) {
            (true, None) => Plan::unchanged(format!("{shown} is absent")),
            (true, Some(_)) => Plan::change(format!("remove the link {shown}"), None, move |w| {
                w.remove_file(&path)
            }),
            (false, Some(now)) if now == target => {
                Plan::unchanged(format!("{shown} -> {}", target.display()))
            }
            (false, now) => {
                let summary = match now {
                    Some(now) => {
                        format!("{shown} -> {} (was -> {})", target.display(), now.display())
                    }
                    None => format!("create {shown} -> {}", target.display()),
                };
                Plan::change(summary, None, move |w| w.symlink(&target, &path))
            }
        })
    }
}

/// Makes a link as [`Symlink`] describes it.
///
/// # Errors
/// [`OpError`] naming the path and what to do.
#[remote]
pub fn symlink(spec: Symlink, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

owner_options!(File);
owner_options!(Directory);
