//! [`user`] and [`group`]: local accounts, through the system's own tools
//! (`useradd`, `usermod`, `userdel`, `groupadd`, `groupmod`, `groupdel`;
//! to create and remove groups and remove users, busybox's `addgroup`,
//! `delgroup` and `deluser` do where only those are), planned from
//! `/etc/passwd` and `/etc/group`.

use serde::{Deserialize, Serialize};

use super::tools::{self, one_of};
use super::{Change, Mode, OpError, Plan, Writer};
use crate::remote;

/// What provides the account tools.
const INSTALL: &str = "install the passwd package (shadow-utils)";

/// Runs an account tool.
fn run(w: &Writer, op: &str, target: &str, argv: Vec<String>) -> Result<(), OpError> {
    tools::run(w, op, target, argv, &[]).map(drop)
}

/// A `/etc/group` entry: name, gid, members.
fn groups_file() -> Result<Vec<(String, u32, Vec<String>)>, OpError> {
    let text = std::fs::read_to_string("/etc/group")
        .map_err(|e| OpError::new("ops::unix_group", "/etc/group", crate::files::describe(&e)))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                let members = f[3].split(',').filter(|m| !m.is_empty()).map(str::to_owned);
                (
                    f[0].to_owned(),
                    f[2].parse().unwrap_or(u32::MAX),
                    members.collect(),
                )
            })
        })
        .collect())
}

/// A local group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixGroup {
    name: String,
    gid: Option<u32>,
    absent: bool,
}

impl UnixGroup {
    /// The group `name`, present.
    pub fn new(name: impl Into<String>) -> UnixGroup {
        UnixGroup {
            name: name.into(),
            gid: None,
            absent: false,
        }
    }

    /// Its group ID.
    pub fn gid(mut self, gid: u32) -> UnixGroup {
        self.gid = Some(gid);
        self
    }

    /// The group must not exist.
    pub fn absent(mut self) -> UnixGroup {
        self.absent = true;
        self
    }

    /// What making the group so would change.
    ///
    /// # Errors
    /// When `/etc/group` cannot be read or the host lacks the tools.
    pub fn plan(self) -> Result<Plan, OpError> {
        const OP: &str = "ops::unix_group";
        let UnixGroup { name, gid, absent } = self;
        tools::account_name(OP, "group", &name)?;
        let now = groups_file()?.into_iter().find(|g| g.0 == name);
        Ok(match (absent, now) {
            (true, None) => Plan::unchanged(format!("group {name} is absent")),
            (true, Some(_)) => {
                let del = one_of(OP, &name, &["groupdel", "delgroup"], INSTALL)?;
                Plan::change(format!("remove group {name}"), None, move |w| {
                    run(w, OP, &name, vec![del, "--".into(), name.clone()])
                })
            }
            (false, None) => {
                let add = one_of(OP, &name, &["groupadd", "addgroup"], INSTALL)?;
                let mut argv = vec![add];
                if let Some(gid) = gid {
                    argv.extend(["-g".to_owned(), gid.to_string()]);
                }
                argv.extend(["--".to_owned(), name.clone()]);
                let shown = gid.map_or(String::new(), |g| format!(" (gid {g})"));
                Plan::change(format!("create group {name}{shown}"), None, move |w| {
                    run(w, OP, &name, argv)
                })
            }
            (false, Some((_, now, _))) => match gid.filter(|g| *g != now) {
                None => Plan::unchanged(format!("group {name} (gid {now})")),
                Some(gid) => {
                    let tool = one_of(OP, &name, &["groupmod"], INSTALL)?;
                    let argv = vec![
                        tool,
                        "-g".into(),
                        gid.to_string(),
                        "--".into(),
                        name.clone(),
                    ];
                    Plan::change(
                        format!("group {name}: gid {now} -> {gid}"),
                        None,
                        move |w| run(w, OP, &name, argv),
                    )
                }
            },
        })
    }
}

/// Makes a group as [`UnixGroup`] describes it.
///
/// # Errors
/// [`OpError`] naming the group and what to do.
#[remote]
pub fn unix_group(spec: UnixGroup, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

/// A local user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    name: String,
    uid: Option<u32>,
    group: Option<String>,
    groups: Option<Vec<String>>,
    shell: Option<String>,
    home: Option<String>,
    absent: bool,
}

impl User {
    /// The user `name`, present (a new one gets a home directory).
    pub fn new(name: impl Into<String>) -> User {
        User {
            name: name.into(),
            uid: None,
            group: None,
            groups: None,
            shell: None,
            home: None,
            absent: false,
        }
    }

    /// Its user ID.
    pub fn uid(mut self, uid: u32) -> User {
        self.uid = Some(uid);
        self
    }

    /// Its primary group, by name (it must exist).
    pub fn group(mut self, primary: impl Into<String>) -> User {
        self.group = Some(primary.into());
        self
    }

    /// Exactly these supplementary groups (they must exist).
    pub fn groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> User {
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        groups.sort();
        groups.dedup();
        self.groups = Some(groups);
        self
    }

    /// Its login shell.
    pub fn shell(mut self, shell: impl Into<String>) -> User {
        self.shell = Some(shell.into());
        self
    }

    /// Its home directory.
    pub fn home(mut self, home: impl Into<String>) -> User {
        self.home = Some(home.into());
        self
    }

    /// The user must not exist (its home directory stays).
    pub fn absent(mut self) -> User {
        self.absent = true;
        self
    }

    /// What making the account so would change.
    ///
    /// # Errors
    /// When `/etc/passwd` or `/etc/group` cannot be read, a named group does
    /// not exist, or the host lacks the tools.
    pub fn plan(self) -> Result<Plan, OpError> {
        const OP: &str = "ops::user";
        let name = self.name.clone();
        tools::account_name(OP, "user", &name)?;
        for group in self.group.iter().chain(self.groups.iter().flatten()) {
            tools::account_name(OP, "group", group)?;
        }
        if let Some(shell) = &self.shell {
            tools::passwd_path(OP, &name, "shell", shell)?;
        }
        if let Some(home) = &self.home {
            tools::passwd_path(OP, &name, "home", home)?;
        }
        let users = crate::facts::users()
            .map_err(|e| OpError::new(OP, "/etc/passwd", crate::files::describe(&e)))?;
        let now = users.into_iter().find(|u| u.name == name);
        let groups = groups_file()?;
        let gid_of = |g: &str| {
            groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
        };
        // A group an earlier step of the run may create is noted, not
        // refused; the account tool fails on apply if it is still missing.
        let missing: Vec<&str> = self
            .group
            .iter()
            .chain(self.groups.iter().flatten())
            .map(String::as_str)
            .filter(|g| gid_of(g).is_none())
            .collect();
        let needs = match missing.is_empty() {
            true => String::new(),
            false => format!(
                "; needs the group {}, which must exist by then (ops::unix_group)",
                missing.join(", ")
            ),
        };
        if self.absent {
            return Ok(match now {
                None => Plan::unchanged(format!("user {name} is absent")),
                Some(_) => {
                    let del = one_of(OP, &name, &["userdel", "deluser"], INSTALL)?;
                    Plan::change(format!("remove user {name}"), None, move |w| {
                        run(w, OP, &name, vec![del, "--".into(), name.clone()])
                    })
                }
            });
        }
        let mut flags: Vec<String> = Vec::new();
        let mut lines = Vec::new();
        let Some(now) = now else {
            let add = one_of(OP, &name, &["useradd"], INSTALL)?;
            if let Some(uid) = self.uid {
                flags.extend(["-u".into(), uid.to_string()]);
            }
            if let Some(primary) = &self.group {
                flags.extend(["-g".into(), primary.clone()]);
            }
            if let Some(groups) = self.groups.as_ref().filter(|g| !g.is_empty()) {
                flags.extend(["-G".into(), groups.join(",")]);
            }
            if let Some(shell) = &self.shell {
                flags.extend(["-s".into(), shell.clone()]);
            }
            if let Some(home) = &self.home {
                flags.extend(["-d".into(), home.clone()]);
            }
            let mut argv = vec![add, "-m".into()];
            argv.extend(flags);
            argv.extend(["--".into(), name.clone()]);
            return Ok(Plan::change(
                format!("create user {name}"),
                None,
                move |w| run(w, OP, &name, argv),
            ));
        };
        if let Some(uid) = self.uid.filter(|u| *u != now.uid) {
            lines.push(format!("uid {} -> {uid}", now.uid));
            flags.extend(["-u".into(), uid.to_string()]);
        }
        if let Some(primary) = &self.group {
            let gid = gid_of(primary).unwrap_or(u32::MAX);
            if gid != now.gid {
                lines.push(format!("primary group {} -> {gid} ({primary})", now.gid));
                flags.extend(["-g".into(), primary.clone()]);
            }
        }
        if let Some(want) = &self.groups {
            let mut have: Vec<String> = groups
                .iter()
                .filter(|(_, _, members)| members.contains(&name))
                .map(|(g, _, _)| g.clone())
                .collect();
            have.sort();
            if &have != want {
                lines.push(format!(
                    "groups [{}] -> [{}]",
                    have.join(","),
                    want.join(",")
                ));
                flags.extend(["-G".into(), want.join(",")]);
            }
        }
        if let Some(shell) = self.shell.as_ref().filter(|s| **s != now.shell) {
            lines.push(format!("shell {} -> {shell}", now.shell));
            flags.extend(["-s".into(), shell.clone()]);
        }
        if let Some(home) = self.home.as_ref().filter(|h| **h != now.home) {
            lines.push(format!("home {} -> {home}", now.home));
            flags.extend(["-d".into(), home.clone()]);
        }
        if lines.is_empty() {
            return Ok(Plan::unchanged(format!("user {name} (uid {})", now.uid)));
        }
        let tool = one_of(OP, &name, &["usermod"], INSTALL)?;
        let mut argv = vec![tool];
        argv.extend(flags);
        argv.extend(["--".into(), name.clone()]);
        Ok(Plan::change(
            format!("user {name}: {}{needs}", lines.join(", ")),
            None,
            move |w| run(w, OP, &name, argv),
        ))
    }
}

/// Makes a user account as [`User`] describes it.
///
/// # Errors
/// [`OpError`] naming the user and what to do.
#[remote]
pub fn user(spec: User, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused before any tool runs: nothing here needs the tools.
    #[test]
    fn names_a_tool_could_read_as_options_are_refused() {
        for bad in [
            "--help", "-r", "", ".hidden", "a:b", "a,b", "a\nb", "a b", "../x", "1000",
        ] {
            let err = User::new(bad).plan().unwrap_err();
            assert!(err.message.contains("not a user name"), "{bad:?}: {err}");
            let err = User::new(bad).absent().plan().unwrap_err();
            assert!(err.message.contains("not a user name"), "{bad:?}: {err}");
            let err = UnixGroup::new(bad).plan().unwrap_err();
            assert!(err.message.contains("not a group name"), "{bad:?}: {err}");
            let err = UnixGroup::new(bad).absent().plan().unwrap_err();
            assert!(err.message.contains("not a group name"), "{bad:?}: {err}");
            let err = User::new("app").group(bad).plan().unwrap_err();
            assert!(err.message.contains("not a group name"), "{bad:?}: {err}");
            let err = User::new("app").groups(["adm", bad]).plan().unwrap_err();
            assert!(err.message.contains("not a group name"), "{bad:?}: {err}");
        }
        for (shell, home) in [
            ("-c", "/home/a"),
            ("/bin/sh", "relative"),
            ("/bin/sh", "/a:b"),
        ] {
            let err = User::new("app").shell(shell).home(home).plan().unwrap_err();
            assert!(err.message.contains("not an absolute path"), "{err}");
        }
        for good in ["app", "www-data", "svc_1", "MACHINE$", "a.b"] {
            tools::account_name("ops::user", "user", good).unwrap();
        }
    }
}
