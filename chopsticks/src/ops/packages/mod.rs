//! [`package`]: installed packages, through the host's own package manager:
//! apt on Debian and its kin, dnf where rpm is, apk on Alpine. One
//! package-manager call handles the whole list.
//!
//! Each package manager is a file of its own behind [`Manager`]: how to
//! find it on a host, what it would do (from its own simulation), how it
//! does it. A new one is a new file and a line in [`MANAGERS`].

mod apk;
mod apt;
mod dnf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::tools::{self, tool};
use super::{Change, CommandOutput, Mode, OpError, Plan, Writer};
use crate::facts::{self, Fact};
use crate::remote;

const OP: &str = "ops::package";

/// How long a package manager may take to say what it would do, or what
/// is installed (a simulation, a database query).
const READ_TIME: Duration = Duration::from_secs(300);

/// How long one run that changes packages may take (downloads included).
const CHANGE_TIME: Duration = Duration::from_secs(3600);

/// The package managers this operation knows, in the order a host is
/// asked for them (the first whose database and tool are there).
static MANAGERS: &[&dyn Manager] = &[&apt::Apt, &apk::Apk, &dnf::Dnf];

/// A package manager: how to find it on a host, what it would do (from its
/// own simulation), and how it does it. The plan, the run and the check
/// of the database afterwards are the same for all ([`plan`]).
trait Manager: Sync {
    /// Its program, as run and as errors name it.
    fn program(&self) -> &'static str;

    /// Whether this host uses it (its database and its tool are there).
    fn detect(&self) -> bool;

    /// Its environment: English messages (the advice is read from them),
    /// no prompts.
    fn env(&self) -> Vec<(String, String)> {
        vec![("LC_ALL".into(), "C".into())]
    }

    /// What every run of it takes after its command (apt's lock wait,
    /// dnf's refusal to wait).
    fn common(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether a run that changes packages failed although its status
    /// says it did not (dnf skipping a name it does not know).
    fn refused(&self, _out: &CommandOutput) -> bool {
        false
    }

    /// The arguments that refresh its package lists.
    fn refresh(&self) -> &'static [&'static str];

    /// The arguments that make packages as `want` says.
    fn args(&self, want: Want) -> &'static [&'static str];

    /// The installed packages: name -> versions, as its simulation shows
    /// versions.
    fn installed(&self, tool: &Tool) -> Result<Installed, OpError> {
        tool.database()
    }

    /// What making `names` as `want` says would do, as the manager itself
    /// says (its simulation).
    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        installed: &Installed,
    ) -> Result<Vec<Step>, OpError>;

    /// Makes `names` as `want` says: what its simulation said it would
    /// do, given what is `installed`.
    fn apply(
        &self,
        w: &Writer,
        tool: &Tool,
        want: Want,
        names: &[String],
        _installed: &Installed,
    ) -> Result<(), OpError> {
        tool.apply(w, self.args(want), names)
    }
}

/// Whether `path` exists on this host.
fn has(path: &str) -> bool {
    Path::new(path).exists()
}

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
/// `apk --simulate`, `dnf --assumeno`), so its plan names the
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
    /// `dnf makecache`). Check mode writes nothing, so it does not refresh
    /// them: its plan is made from the lists the host has, and says so.
    /// [`package`](struct@package) in [`Mode::Apply`] refreshes them,
    /// then plans from them; a [`plan`](Package::plan) is made before the
    /// refresh, which its apply step runs first: see there.
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
    /// With [`update_cache`](Package::update_cache), the plan is made from
    /// the package lists as they are (planning only reads) and says so;
    /// its apply step refreshes them, plans again, and makes that change
    /// when it is the one reported. When the refreshed lists change the
    /// plan (a newer version came), it fails after the refresh, having
    /// changed nothing else, and says to run again: the next plan is made
    /// from the refreshed lists. [`package`](struct@package) in
    /// [`Mode::Apply`] refreshes before it plans, and so never fails so.
    ///
    /// # Errors
    /// When the host has no package manager this operation knows, a name
    /// is not a package the manager knows, or its database cannot be read.
    /// With [`update_cache`](Package::update_cache), when the host has no
    /// package lists to plan from yet (dnf with no metadata cached): the
    /// plan is made before the refresh; [`package`](struct@package) in
    /// [`Mode::Apply`] refreshes first.
    pub fn plan(self) -> Result<Plan, OpError> {
        self.checked()?;
        let tool = Tool::of_host(self.shown(), self.update_cache)?;
        match self.update_cache {
            false => plan(tool, self),
            true => refreshed(tool, self),
        }
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
    let mode = mode.here();
    if !(spec.update_cache && mode == Mode::Apply) {
        return spec.plan()?.run(mode);
    }
    // Refreshed first, then planned from the fresh lists: the change is
    // what they say.
    let tool = Tool::of_host(spec.shown(), spec.update_cache)?;
    tool.refresh().run(mode)?;
    plan(tool, spec)?.run(mode)
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

/// The installed packages: name -> versions (several of an installonly
/// package, a kernel; one for each architecture).
type Installed = BTreeMap<String, BTreeSet<String>>;

/// The installed packages of `(name, version)` pairs.
fn installed_of(pairs: impl IntoIterator<Item = (String, String)>) -> Installed {
    let mut installed = Installed::new();
    for (name, version) in pairs {
        installed.entry(name).or_default().insert(version);
    }
    installed
}

/// The installed versions of `name`, one word: `1.0-1`, `6.1-1 6.2-1`.
fn installed_version(installed: &Installed, name: &str) -> Option<String> {
    let versions = installed.get(name)?;
    Some(versions.iter().cloned().collect::<Vec<_>>().join(" "))
}

/// The host's package manager, as one plan drives it: its runs, errors
/// naming the packages (`target`) and saying what to do (which depends on
/// whether the spec refreshes the lists: `update_cache`).
#[derive(Clone)]
struct Tool {
    manager: &'static dyn Manager,
    target: String,
    update_cache: bool,
}

impl Tool {
    /// The host's package manager.
    fn of_host(target: String, update_cache: bool) -> Result<Tool, OpError> {
        match MANAGERS.iter().find(|m| m.detect()) {
            Some(manager) => Ok(Tool {
                manager: *manager,
                target,
                update_cache,
            }),
            None => Err(OpError::new(
                OP,
                target,
                "this host has no package manager this operation knows (apt, dnf, apk): \
                 use ops::command with your installer's own guard",
            )),
        }
    }

    fn argv(&self, args: &[&str], names: &[String]) -> Vec<String> {
        let program = self.manager.program();
        let path = tool(program).map_or_else(|| program.to_owned(), |p| p.display().to_string());
        let mut argv = vec![path];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv.extend(self.manager.common());
        argv.extend(names.iter().cloned());
        argv
    }

    /// Refreshing the package lists: a step that runs in apply mode only
    /// and changes nothing the operation describes.
    fn refresh(&self) -> Plan {
        let tool = self.clone();
        Plan::refresh("refresh the package lists", move |w| {
            tool.apply(w, tool.manager.refresh(), &[])
        })
    }

    /// The installed packages, as the manager reads them.
    fn installed(&self) -> Result<Installed, OpError> {
        self.manager.installed(self)
    }

    /// The installed packages, from the package database the host's facts
    /// read (dpkg's, apk's).
    fn database(&self) -> Result<Installed, OpError> {
        let found = facts::packages().map_err(|e| {
            OpError::new(
                OP,
                &self.target,
                format!("cannot read the package database: {e}"),
            )
        })?;
        match found {
            Fact::Known(p) => Ok(installed_of(
                p.installed.into_iter().map(|p| (p.name, p.version)),
            )),
            Fact::NotAvailable(why) => Err(OpError::new(OP, &self.target, why)),
        }
    }

    /// Runs a command that only looks (a simulation, a check for
    /// updates), in check mode too; whatever its status.
    fn run_read_only(&self, args: &[&str], names: &[String]) -> Result<CommandOutput, OpError> {
        self.read(&self.argv(args, names))
    }

    /// Runs `argv`, a program that only looks, in the manager's
    /// environment and within [`READ_TIME`]; whatever its status.
    fn read(&self, argv: &[String]) -> Result<CommandOutput, OpError> {
        let env = self.manager.env();
        let program = Program {
            argv,
            env: &env,
            cwd: None,
            shown: &self.target,
            timeout: Some(READ_TIME),
        };
        program.output(OP)
    }

    /// [`run_read_only`](Tool::run_read_only), failing unless it succeeds.
    fn read_only(&self, args: &[&str], names: &[String]) -> Result<CommandOutput, OpError> {
        let out = self.run_read_only(args, names)?;
        match out.status {
            0 => Ok(out),
            _ => Err(self.failed(args, names, &out)),
        }
    }

    /// Runs a change through the writer, failing unless it succeeds.
    fn apply(&self, w: &Writer, args: &[&str], names: &[String]) -> Result<(), OpError> {
        let (argv, env) = (self.argv(args, names), self.manager.env());
        let program = Program {
            argv: &argv,
            env: &env,
            cwd: None,
            shown: &self.target,
            timeout: Some(CHANGE_TIME),
        };
        let out = w.exec(program, OP)?;
        match out.status == 0 && !self.manager.refused(&out) {
            true => Ok(()),
            false => Err(self.failed_argv(&argv, &out)),
        }
    }

    /// After apply: the database says what the plan promised.
    fn verify(&self, steps: &[Step]) -> Result<(), OpError> {
        let installed = self.installed()?;
        match unkept(steps, &installed) {
            None => Ok(()),
            Some(what) => Err(OpError::new(
                OP,
                &self.target,
                format!(
                    "{} succeeded, but {what}: check the package manager's configuration \
                     (holds, pins, excludes)",
                    self.manager.program(),
                ),
            )),
        }
    }

    /// The package manager's failure to run `args` on `names`, with what
    /// to do.
    fn failed(&self, args: &[&str], names: &[String], out: &CommandOutput) -> OpError {
        self.failed_argv(&self.argv(args, names), out)
    }

    fn failed_argv(&self, argv: &[String], out: &CommandOutput) -> OpError {
        let said = format!("{}\n{}", out.stdout, out.stderr);
        // Before a planned refresh (check mode, Package::plan), the lists
        // are as the host has them: update_cache() cannot help there.
        let before_refresh = "check mode and Package::plan() read the package lists as the \
             host has them, before update_cache() refreshes them: run in apply mode (it \
             refreshes first)";
        let advice = if said.contains("Cache-only enabled but no cache") {
            match self.update_cache {
                false => "dnf has no metadata of a repository cached, and plans from its cache \
                     only (check mode refreshes nothing): add update_cache() to fetch it (dnf \
                     makecache)"
                    .to_owned(),
                true => format!(
                    "dnf has no metadata of a repository cached, and plans from its cache \
                     only: {before_refresh}, or run `dnf makecache` once"
                ),
            }
        } else if said.contains("Unable to locate package")
            || said.contains("No match for argument")
            || said.contains("Unable to find a match")
            || said.contains("unable to select packages")
            || said.contains("has no installation candidate")
        {
            match self.update_cache {
                false => "the package lists have no such package: check the name, or add \
                     update_cache() to refresh them first"
                    .to_owned(),
                true => format!(
                    "the package lists have no such package: check the name ({before_refresh})"
                ),
            }
        } else if said.contains("are you root")
            || said.contains("Permission denied")
            || said.contains("This command has to be run with superuser")
            || said.contains("Operation not permitted")
        {
            "changing packages needs root: connect as root or through sudo \
             (TunnelBuilder::sudo)"
                .to_owned()
        } else if said.contains("Could not get lock")
            || said.contains("Unable to lock")
            || said.contains("already locked by")
            || said.contains("Waiting for process with pid")
        {
            "another package manager holds the lock (a second run, unattended upgrades, \
             dnf-automatic): try again when it is done"
                .to_owned()
        } else {
            "see what it said".to_owned()
        };
        OpError::new(
            OP,
            &self.target,
            format!(
                "`{}` exited with status {}: {}; {advice}",
                argv.join(" "),
                out.status,
                tools::tail(out, 4)
            ),
        )
    }
}

/// What making the packages as `spec` says would change, with the step
/// that does it: planned from the package manager's own simulation.
fn plan(tool: Tool, spec: Package) -> Result<Plan, OpError> {
    let installed = tool.installed()?;
    let names = spec.names;
    let want = spec.want;
    let acted_on: Vec<String> = match want {
        Want::Absent => names
            .iter()
            .filter(|n| installed.contains_key(*n))
            .cloned()
            .collect(),
        Want::Present => names
            .iter()
            .filter(|n| !installed.contains_key(*n))
            .cloned()
            .collect(),
        Want::Latest => names.clone(),
    };
    if acted_on.is_empty() {
        return Ok(Plan::unchanged(match want {
            Want::Absent => format!("packages absent: {}", tool.target),
            _ => format!("packages installed: {}", versions(&names, &installed)),
        }));
    }
    let steps = tool.manager.simulate(&tool, want, &acted_on, &installed)?;
    if want == Want::Absent {
        let kept: Vec<&str> = acted_on
            .iter()
            .filter(|n| !steps.iter().any(|st| st.name() == n.as_str()))
            .map(String::as_str)
            .collect();
        if !kept.is_empty() {
            return Err(OpError::new(
                OP,
                &tool.target,
                format!(
                    "{} would not remove {} (other packages need it?): remove those too, or \
                     leave it installed",
                    tool.manager.program(),
                    kept.join(", ")
                ),
            ));
        }
    }
    if steps.is_empty() {
        return Ok(Plan::unchanged(format!(
            "packages up to date: {}",
            versions(&names, &installed)
        )));
    }
    let lines: Vec<String> = steps.iter().map(|s| s.line(&names)).collect();
    let summary = format!("packages: {}", lines.join(", "));
    Ok(Plan::change(summary, None, move |w| {
        tool.manager.apply(w, &tool, want, &acted_on, &installed)?;
        tool.verify(&steps)
    }))
}

/// The plan of a spec that refreshes the package lists first: made from
/// the lists as they are, refreshed and planned again by its apply step,
/// which fails when that plan is not the one reported.
fn refreshed(tool: Tool, spec: Package) -> Result<Plan, OpError> {
    let reported = plan(tool.clone(), spec.clone())?.planned().clone();
    let summary = format!("{}{NOT_REFRESHED}", reported.summary);
    let apply = move |w: &Writer| {
        tool.apply(w, tool.manager.refresh(), &[])?;
        let fresh = plan(tool.clone(), spec)?;
        if fresh.planned().summary != reported.summary {
            return Err(OpError::new(
                OP,
                &tool.target,
                format!(
                    "the refreshed package lists change the plan: now `{}`, not `{}` as \
                     reported; nothing but the lists changed: run again to plan from them",
                    fresh.planned().summary,
                    reported.summary
                ),
            ));
        }
        fresh.apply_with(w)
    };
    Ok(match reported.changed {
        true => Plan::change(summary, None, apply),
        false => Plan::refresh(summary, apply),
    })
}

/// What the summary of a plan made before its package lists are
/// refreshed says: true in check mode (which never refreshes them) and
/// in apply mode (whose refresh comes after the plan).
const NOT_REFRESHED: &str = " (planned before update_cache() refreshes the package lists)";

/// `name version, ...` for the named packages, those installed.
fn versions(names: &[String], installed: &Installed) -> String {
    names
        .iter()
        .map(|n| match installed_version(installed, n) {
            Some(v) => format!("{n} {v}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first of `steps` the database (`installed`) does not show done, as
/// `NAME VERSION is not in the package database`, `... is still in ...`:
/// an install or upgrade is
/// there at the version it named; a removal is gone, or, when the same
/// plan installs that name anew (an installonly package, a kernel: the
/// new one in, the oldest out), gone at its version.
fn unkept(steps: &[Step], installed: &Installed) -> Option<String> {
    let has = |name: &str, version: &str| {
        installed
            .get(name)
            .is_some_and(|v| version.is_empty() || v.contains(version))
    };
    let brought = |name: &str| {
        steps
            .iter()
            .any(|s| s.name() == name && !matches!(s, Step::Remove { .. }))
    };
    steps.iter().find_map(|step| match step {
        Step::Install { name, version }
        | Step::Upgrade {
            name, to: version, ..
        } => (!has(name, version)).then(|| match installed_version(installed, name) {
            Some(there) => format!("{name} {version} is not in the package database ({there} is)"),
            None => format!("{name} is not in the package database"),
        }),
        Step::Remove { name, version } if brought(name) => (!version.is_empty()
            && has(name, version))
        .then(|| format!("{name} {version} is still in the package database")),
        Step::Remove { name, .. } => installed
            .contains_key(name)
            .then(|| format!("{name} is still in the package database")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
