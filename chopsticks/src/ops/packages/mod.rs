//! [`package`]: installed packages, through the host's own package manager:
//! apt on Debian and its kin, dnf where rpm is, apk on Alpine. One
//! package-manager call handles the whole list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::process::Run;
use super::tools::{self, tool};
use super::{Change, Mode, OpError, Plan, Writer};
use crate::facts::{self, Fact};
use crate::remote;

const OP: &str = "ops::package";

/// How long apt waits for another package manager's lock (unattended
/// upgrades, a second run) before it fails.
const LOCK_WAIT_SECS: u32 = 120;

/// What the listed packages should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Want {
    Present,
    Latest,
    Absent,
}

/// Packages that should be installed (in any version, or the newest the
/// package lists offer) or absent.
///
/// ```
/// use chopsticks::ops::Package;
///
/// let web = Package::new(["nginx", "curl"]);               // installed, any version
/// let fresh = Package::new(["openssl"]).latest().update_cache();
/// let gone = Package::new(["telnet"]).absent();
/// # let _ = (web, fresh, gone);
/// ```
///
/// Check mode asks the package manager what it would do (`apt-get -s`,
/// `apk --simulate`, `dnf check-update`), so its plan names the
/// dependencies a package brings and the dependents a removal takes with
/// it. Changing packages needs root: connect as root, or with
/// [`sudo`](crate::TunnelBuilder::sudo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    names: Vec<String>,
    want: Want,
    update_cache: bool,
}

impl Package {
    /// The packages `names`, installed in any version.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Package {
        Package {
            names: names.into_iter().map(Into::into).collect(),
            want: Want::Present,
            update_cache: false,
        }
    }

    /// Installed in the newest version the package lists offer.
    pub fn latest(mut self) -> Package {
        self.want = Want::Latest;
        self
    }

    /// Not installed (apt: removed, configuration files kept).
    pub fn absent(mut self) -> Package {
        self.want = Want::Absent;
        self
    }

    /// Refresh the package lists first (`apt-get update`, `apk update`,
    /// `dnf makecache`). In [`Mode::Check`] they are not refreshed: the
    /// plan is made from the lists the host has.
    pub fn update_cache(mut self) -> Package {
        self.update_cache = true;
        self
    }

    fn shown(&self) -> String {
        self.names.join(", ")
    }

    /// Refuses what is not a package name (an option, a shell word).
    fn checked(&self) -> Result<(), OpError> {
        if self.names.is_empty() {
            return Err(OpError::new(
                OP,
                "[]",
                "no package named: give at least one",
            ));
        }
        // apt reads `name-` as "remove name" and `name:arch` as another
        // package than the database's `name`: neither is taken.
        let valid = |n: &str| {
            n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
                && !n.ends_with(['-', '_'])
        };
        match self.names.iter().find(|n| !valid(n)) {
            None => Ok(()),
            Some(bad) => Err(OpError::new(
                OP,
                bad,
                "not a package name: names start with a letter or digit, hold only letters, \
                 digits and + - . _, and do not end in - or _ (no versions, architectures or \
                 apt's own suffixes)",
            )),
        }
    }

    /// What making the packages so would change.
    ///
    /// # Errors
    /// When the host has no package manager this operation knows, a name
    /// is not a package the manager knows, or its database cannot be read.
    pub fn plan(self) -> Result<Plan, OpError> {
        self.checked()?;
        let manager = Manager::of_host(&self.shown())?;
        manager.plan(self)
    }
}

/// Makes packages installed or absent as [`Package`] says, in one call of
/// the host's package manager.
///
/// # Errors
/// [`OpError`] naming the packages, quoting the package manager and saying
/// what to do.
#[remote]
pub fn package(spec: Package, mode: Mode) -> Result<Change, OpError> {
    spec.checked()?;
    let manager = Manager::of_host(&spec.shown())?;
    let refresh = spec.update_cache;
    if refresh {
        manager.refresh(&spec.shown()).run(mode)?;
    }
    let mut change = manager.plan(spec)?.run(mode)?;
    if refresh && mode == Mode::Check {
        change
            .summary
            .push_str(" (package lists not refreshed in check mode)");
    }
    Ok(change)
}

/// A package manager this operation drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Apt,
    Dnf,
    Apk,
}

/// What a package manager said it would do with one package.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Install `name` at `version`.
    Install { name: String, version: String },
    /// Upgrade (or downgrade) `name` from one version to another.
    Upgrade {
        name: String,
        from: String,
        to: String,
    },
    /// Remove `name`, installed at `version`.
    Remove { name: String, version: String },
}

impl Step {
    fn name(&self) -> &str {
        match self {
            Step::Install { name, .. } | Step::Upgrade { name, .. } | Step::Remove { name, .. } => {
                name
            }
        }
    }

    /// One line: `install cs-hello 1.1`, with `(dependency)` for what the
    /// spec did not name.
    fn line(&self, named: &[String]) -> String {
        let text = match self {
            Step::Install { name, version } => format!("install {name} {version}"),
            Step::Upgrade { name, from, to } => format!("upgrade {name} {from} -> {to}"),
            Step::Remove { name, version } => format!("remove {name} {version}"),
        };
        match named.iter().any(|n| n == self.name()) {
            true => text,
            false => format!("{text} (dependency)"),
        }
    }
}

/// The installed packages: name -> version.
type Installed = BTreeMap<String, String>;

impl Manager {
    /// The host's package manager: a database and its tool.
    fn of_host(target: &str) -> Result<Manager, OpError> {
        let has = |p: &str| std::path::Path::new(p).exists();
        if has("/var/lib/dpkg/status") && tool("apt-get").is_some() {
            Ok(Manager::Apt)
        } else if has("/lib/apk/db/installed") && tool("apk").is_some() {
            Ok(Manager::Apk)
        } else if tool("dnf").is_some() {
            Ok(Manager::Dnf)
        } else {
            Err(OpError::new(
                OP,
                target,
                "this host has no package manager this operation knows (apt, dnf, apk): \
                 use ops::command with your installer's own guard",
            ))
        }
    }

    fn program(self) -> &'static str {
        match self {
            Manager::Apt => "apt-get",
            Manager::Dnf => "dnf",
            Manager::Apk => "apk",
        }
    }

    fn argv(self, args: &[&str], names: &[String]) -> Vec<String> {
        let path = tool(self.program())
            .map_or_else(|| self.program().to_owned(), |p| p.display().to_string());
        let mut argv = vec![path];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        if self == Manager::Apt {
            argv.extend([
                "-o".to_owned(),
                format!("DPkg::Lock::Timeout={LOCK_WAIT_SECS}"),
            ]);
        }
        argv.extend(names.iter().cloned());
        argv
    }

    fn env(self) -> Vec<(String, String)> {
        match self {
            // English messages (their advice is read from them); no
            // prompts; needrestart lists, never restarts what the plan
            // does not say.
            Manager::Apt => vec![
                ("LC_ALL".into(), "C".into()),
                ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
                ("APT_LISTCHANGES_FRONTEND".into(), "none".into()),
                ("NEEDRESTART_MODE".into(), "l".into()),
            ],
            Manager::Dnf | Manager::Apk => vec![("LC_ALL".into(), "C".into())],
        }
    }

    /// Refreshing the package lists: a step that runs in apply mode only
    /// and changes nothing the operation describes.
    fn refresh(self, target: &str) -> Plan {
        let argv = match self {
            Manager::Apt => self.argv(&["update", "-q"], &[]),
            Manager::Dnf => self.argv(&["makecache", "-q"], &[]),
            Manager::Apk => self.argv(&["update", "-q"], &[]),
        };
        let (target, env) = (target.to_owned(), self.env());
        Plan::refresh("refresh the package lists", move |w| {
            let out = w.run(&argv, &env, None)?;
            match out.status {
                0 => Ok(()),
                _ => Err(self.failed(&target, &argv, &out)),
            }
        })
    }

    /// The installed packages, from the package database.
    fn installed(self, target: &str) -> Result<Installed, OpError> {
        let found = facts::packages().map_err(|e| {
            OpError::new(OP, target, format!("cannot read the package database: {e}"))
        })?;
        match found {
            Fact::Known(p) => Ok(p
                .installed
                .into_iter()
                .map(|p| (p.name, p.version))
                .collect()),
            Fact::NotAvailable(why) => Err(OpError::new(OP, target, why)),
        }
    }

    fn plan(self, spec: Package) -> Result<Plan, OpError> {
        let target = spec.shown();
        let installed = self.installed(&target)?;
        let names = spec.names.clone();
        let (steps, run): (Vec<Step>, Vec<String>) = match spec.want {
            Want::Absent => {
                let there: Vec<String> = names
                    .iter()
                    .filter(|n| installed.contains_key(*n))
                    .cloned()
                    .collect();
                if there.is_empty() {
                    return Ok(Plan::unchanged(format!("packages absent: {target}")));
                }
                let steps: Vec<Step> = match self {
                    Manager::Apt => self.simulate(&target, &["remove"], &there)?,
                    Manager::Apk => self.simulate(&target, &["del"], &there)?,
                    Manager::Dnf => there
                        .iter()
                        .map(|n| Step::Remove {
                            name: n.clone(),
                            version: installed[n].clone(),
                        })
                        .collect(),
                };
                let kept: Vec<&String> = there
                    .iter()
                    .filter(|n| !steps.iter().any(|st| st.name() == n.as_str()))
                    .collect();
                if !kept.is_empty() {
                    let kept: Vec<&str> = kept.iter().map(|n| n.as_str()).collect();
                    return Err(OpError::new(
                        OP,
                        &target,
                        format!(
                            "{} would not remove {} (other packages need it?): remove those \
                             too, or leave it installed",
                            self.program(),
                            kept.join(", ")
                        ),
                    ));
                }
                let args: &[&str] = match self {
                    Manager::Apt => &["remove", "-y", "-q"],
                    Manager::Dnf => &["remove", "-y", "-q"],
                    Manager::Apk => &["del", "-q"],
                };
                (steps, self.argv(args, &there))
            }
            Want::Present => {
                let missing: Vec<String> = names
                    .iter()
                    .filter(|n| !installed.contains_key(*n))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(Plan::unchanged(format!(
                        "packages installed: {}",
                        versions(&names, &installed)
                    )));
                }
                let steps = match self {
                    Manager::Apt => self.simulate(&target, &["install"], &missing)?,
                    Manager::Apk => self.simulate(&target, &["add"], &missing)?,
                    Manager::Dnf => missing
                        .iter()
                        .map(|n| Step::Install {
                            name: n.clone(),
                            version: "(newest)".into(),
                        })
                        .collect(),
                };
                (steps, self.argv(self.install_args(), &missing))
            }
            Want::Latest => {
                let steps = match self {
                    Manager::Apt => self.simulate(&target, &["install"], &names)?,
                    Manager::Apk => self.simulate(&target, &["add", "--upgrade"], &names)?,
                    Manager::Dnf => self.dnf_updates(&target, &names, &installed)?,
                };
                let args: &[&str] = match self {
                    Manager::Apk => &["add", "--upgrade", "-q"],
                    _ => self.install_args(),
                };
                (steps, self.argv(args, &names))
            }
        };
        if steps.is_empty() {
            return Ok(Plan::unchanged(format!(
                "packages up to date: {}",
                versions(&names, &installed)
            )));
        }
        let lines: Vec<String> = steps.iter().map(|s| s.line(&names)).collect();
        let summary = format!("packages: {}", lines.join(", "));
        let env = self.env();
        Ok(Plan::change(summary, None, move |w| {
            self.apply(w, &target, run, &env, &steps)
        }))
    }

    fn install_args(self) -> &'static [&'static str] {
        match self {
            Manager::Apt => &[
                "install",
                "-y",
                "-q",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ],
            Manager::Dnf => &["install", "-y", "-q"],
            Manager::Apk => &["add", "-q"],
        }
    }

    fn apply(
        self,
        w: &Writer,
        target: &str,
        argv: Vec<String>,
        env: &[(String, String)],
        steps: &[Step],
    ) -> Result<(), OpError> {
        let out = w.run(&argv, env, None)?;
        if out.status != 0 {
            return Err(self.failed(target, &argv, &out));
        }
        if self == Manager::Dnf {
            // dnf install leaves an installed package as it is: upgrade the
            // outdated ones of a `latest` plan.
            let outdated: Vec<String> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Upgrade { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect();
            if !outdated.is_empty() && argv.iter().any(|a| a == "install") {
                let argv = self.argv(&["upgrade", "-y", "-q"], &outdated);
                let out = w.run(&argv, env, None)?;
                if out.status != 0 {
                    return Err(self.failed(target, &argv, &out));
                }
            }
        }
        self.verify(target, steps)
    }

    /// After apply: the database says what the plan promised.
    fn verify(self, target: &str, steps: &[Step]) -> Result<(), OpError> {
        let installed = self.installed(target)?;
        for step in steps {
            let there = installed.contains_key(step.name());
            if there == matches!(step, Step::Remove { .. }) {
                return Err(OpError::new(
                    OP,
                    target,
                    format!(
                        "{} succeeded, but {} is {} the package database: check the \
                         package manager's configuration (holds, pins)",
                        self.program(),
                        step.name(),
                        if there { "still in" } else { "not in" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What the package manager says it would do.
    fn simulate(self, target: &str, args: &[&str], names: &[String]) -> Result<Vec<Step>, OpError> {
        let mut full: Vec<&str> = args.to_vec();
        full.push(match self {
            Manager::Apk => "--simulate",
            _ => "-s",
        });
        let argv = self.argv(&full, names);
        let out = self.read_only(target, &argv)?;
        if out.status != 0 {
            return Err(self.failed(target, &argv, &out));
        }
        Ok(match self {
            Manager::Apt => apt_steps(&out.stdout),
            Manager::Apk => apk_steps(&out.stdout),
            Manager::Dnf => Vec::new(),
        })
    }

    /// Runs a command that only looks (a simulation, a check for updates),
    /// in check mode too.
    fn read_only(self, target: &str, argv: &[String]) -> Result<super::Output, OpError> {
        let env = self.env();
        let run = Run {
            argv,
            env: &env,
            cwd: None,
            shown: target,
            timeout: None,
        };
        run.output(OP)
    }

    /// `latest` on dnf: missing packages to install, outdated ones (as
    /// `dnf check-update` lists them) to upgrade.
    fn dnf_updates(
        self,
        target: &str,
        names: &[String],
        installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let argv = self.argv(&["check-update", "-q"], names);
        let out = self.read_only(target, &argv)?;
        // 100: updates are available; 0: none.
        if out.status != 0 && out.status != 100 {
            return Err(self.failed(target, &argv, &out));
        }
        let mut steps: Vec<Step> = names
            .iter()
            .filter(|n| !installed.contains_key(*n))
            .map(|n| Step::Install {
                name: n.clone(),
                version: "(newest)".into(),
            })
            .collect();
        steps.extend(dnf_updates_of(&out.stdout, installed));
        Ok(steps)
    }

    /// The package manager's failure, with what to do.
    fn failed(self, target: &str, argv: &[String], out: &super::Output) -> OpError {
        let said = format!("{}\n{}", out.stdout, out.stderr);
        let advice = if said.contains("Unable to locate package")
            || said.contains("No match for argument")
            || said.contains("unable to select packages")
            || said.contains("has no installation candidate")
        {
            "the package lists have no such package: check the name, or add update_cache() \
             to refresh them first"
        } else if said.contains("are you root")
            || said.contains("Permission denied")
            || said.contains("This command has to be run with superuser")
            || said.contains("Operation not permitted")
        {
            "changing packages needs root: connect as root or through sudo \
             (TunnelBuilder::sudo)"
        } else if said.contains("Could not get lock") || said.contains("Unable to lock") {
            "another package manager holds the lock (a second run, unattended upgrades): \
             try again when it is done"
        } else {
            "see what it said"
        };
        OpError::new(
            OP,
            target,
            format!(
                "`{}` exited with status {}: {}; {advice}",
                argv.join(" "),
                out.status,
                tools::tail(out, 4)
            ),
        )
    }
}

/// `name version, ...` for the named packages, those installed.
fn versions(names: &[String], installed: &Installed) -> String {
    names
        .iter()
        .map(|n| match installed.get(n) {
            Some(v) => format!("{n} {v}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps of `apt-get -s` output: `Inst NAME [OLD] (NEW ...)` and
/// `Remv NAME [OLD]` lines.
fn apt_steps(out: &str) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let (verb, rest) = line.split_once(' ')?;
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let old = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(v, _)| v.to_owned());
            let new = rest
                .split_once('(')
                .and_then(|(_, r)| r.split(' ').next())
                .map(str::to_owned);
            let name = name.to_owned();
            match (verb, old, new) {
                ("Inst", Some(from), Some(to)) => Some(Step::Upgrade { name, from, to }),
                ("Inst", None, Some(version)) => Some(Step::Install { name, version }),
                ("Remv", old, _) => Some(Step::Remove {
                    name,
                    version: old.unwrap_or_default(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The steps of `apk --simulate` output: `(1/2) Installing NAME (VERSION)`,
/// `Upgrading NAME (OLD -> NEW)`, `Purging NAME (VERSION)`.
fn apk_steps(out: &str) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = match line.strip_prefix('(') {
                Some(r) => r.split_once(") ")?.1,
                None => line,
            };
            let mut words = line.splitn(3, ' ');
            let (verb, name, rest) = (words.next()?, words.next()?, words.next()?);
            let inner = rest.strip_prefix('(')?.split(')').next()?;
            let name = name.to_owned();
            match verb {
                "Installing" => Some(Step::Install {
                    name,
                    version: inner.to_owned(),
                }),
                "Upgrading" | "Downgrading" | "Replacing" => {
                    let (from, to) = inner.split_once(" -> ")?;
                    Some(Step::Upgrade {
                        name,
                        from: from.to_owned(),
                        to: to.to_owned(),
                    })
                }
                "Purging" | "Deleting" => Some(Step::Remove {
                    name,
                    version: inner.to_owned(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The upgrades `dnf check-update` lists: `NAME.ARCH  VERSION  REPO` lines.
fn dnf_updates_of(out: &str, installed: &Installed) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (full, to, _repo) = (words.next()?, words.next()?, words.next()?);
            let name = full.rsplit_once('.').map_or(full, |(n, _)| n);
            let from = installed.get(name)?;
            Some(Step::Upgrade {
                name: name.to_owned(),
                from: from.clone(),
                to: to.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_simulation_reads_as_steps() {
        let out = "NOTE: This is only a simulation!\n\
                   Inst cs-hello [1.0] (1.1 localhost [all])\n\
                   Inst cs-tool (1.0 localhost [all])\n\
                   Conf cs-hello (1.1 localhost [all])\n\
                   Remv cs-old [2.0]\n";
        let steps = apt_steps(out);
        assert_eq!(steps.len(), 3, "{steps:?}");
        let named = vec!["cs-tool".to_owned()];
        let lines: Vec<String> = steps.iter().map(|s| s.line(&named)).collect();
        assert_eq!(
            lines,
            [
                "upgrade cs-hello 1.0 -> 1.1 (dependency)",
                "install cs-tool 1.0",
                "remove cs-old 2.0 (dependency)",
            ]
        );
    }

    #[test]
    fn apk_and_dnf_output_reads_as_steps() {
        let out = "(1/3) Installing musl-utils (1.2.4-r2)\n\
                   (2/3) Upgrading curl (8.4.0-r0 -> 8.5.0-r0)\n\
                   (3/3) Purging nano (7.2-r1)\nOK: 10 MiB in 20 packages\n";
        assert_eq!(
            apk_steps(out),
            [
                Step::Install {
                    name: "musl-utils".into(),
                    version: "1.2.4-r2".into()
                },
                Step::Upgrade {
                    name: "curl".into(),
                    from: "8.4.0-r0".into(),
                    to: "8.5.0-r0".into()
                },
                Step::Remove {
                    name: "nano".into(),
                    version: "7.2-r1".into()
                },
            ]
        );
        let installed: Installed = [("curl".to_owned(), "8.0-1.fc39".to_owned())].into();
        let steps = dnf_updates_of("\ncurl.x86_64   8.2-1.fc39   updates\n", &installed);
        assert_eq!(
            steps[0].line(&["curl".into()]),
            "upgrade curl 8.0-1.fc39 -> 8.2-1.fc39"
        );
    }

    #[test]
    fn names_that_are_options_or_words_are_refused() {
        for bad in [
            "-oAPT::x=1",
            "a b",
            "",
            "x;y",
            "pkg=1.0",
            "nginx-",
            "libc6:amd64",
        ] {
            let err = Package::new([bad]).checked().unwrap_err();
            assert!(err.message.contains("not a package name"), "{bad}: {err}");
        }
        assert!(Package::new(Vec::<String>::new()).checked().is_err());
        Package::new(["libc6", "g++", "python3.11", "perl_base"])
            .checked()
            .unwrap();
    }
}
