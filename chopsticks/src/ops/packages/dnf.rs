//! dnf, where rpm is: planned from dnf's own simulation (`--assumeno`),
//! the installed packages read from rpm's database.
//!
//! The simulation runs from dnf's cache only (`-C`): it never refreshes
//! the metadata, so check mode writes nothing, and a run plans from the
//! metadata the host has, as apt's lists. The changes run with that
//! metadata too (it does not expire during them), so they do what the
//! simulation said; `update_cache()` refreshes it (`dnf makecache`).

use super::{Installed, Manager, Step, Tool, Want};
use crate::ops::{OpError, Writer};

pub(super) struct Dnf;

/// What every change takes: the cached metadata, however old (as the
/// simulation read it).
const KEEP_METADATA: &str = "--setopt=*.metadata_expire=-1";

impl Manager for Dnf {
    fn program(&self) -> &'static str {
        "dnf"
    }

    fn detect(&self) -> bool {
        super::tool(self.program()).is_some() && super::tool("rpm").is_some()
    }

    fn refresh(&self) -> &'static [&'static str] {
        &["makecache", "-q"]
    }

    fn args(&self, want: Want) -> &'static [&'static str] {
        match want {
            Want::Present => &["install", "-y", "-q", KEEP_METADATA],
            Want::Latest => &["upgrade", "-y", "-q", KEEP_METADATA],
            Want::Absent => &["remove", "-y", "-q", KEEP_METADATA],
        }
    }

    /// The installed packages, from `rpm -qa`, versions as dnf shows them
    /// (`EPOCH:` only when there is one).
    fn installed(&self, tool: &Tool) -> Result<Installed, OpError> {
        let rpm = super::tool("rpm").map_or_else(|| "rpm".into(), |p| p.display().to_string());
        let query = "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n";
        let argv = [rpm, "-qa".into(), "--qf".into(), query.into()];
        let out = tool.read(&argv)?;
        if out.status != 0 {
            return Err(tool.failed_argv(&argv, &out));
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect())
    }

    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let mut steps = Vec::new();
        for (verb, names) in runs(want, names, installed) {
            let args = ["--assumeno", "-C", verb];
            let out = tool.run_read_only(&args, &names)?;
            let found = transaction(&out.stdout, installed);
            // --assumeno ends a transaction with status 1 ("Operation
            // aborted." on stderr); one with nothing to do ends with 0.
            let aborted = out.stderr.contains("Operation aborted") || out.status == 0;
            if !aborted || (found.is_empty() && out.status != 0) {
                return Err(tool.failed(&args, &names, &out));
            }
            steps.extend(found);
        }
        Ok(steps)
    }

    /// `dnf install` leaves an installed package as it is, and `dnf
    /// upgrade` does not install: a `latest` plan installs the missing
    /// packages and upgrades the others.
    fn apply(
        &self,
        w: &Writer,
        tool: &Tool,
        want: Want,
        names: &[String],
        installed: &Installed,
    ) -> Result<(), OpError> {
        for (verb, names) in runs(want, names, installed) {
            let want = match verb {
                "install" => Want::Present,
                "upgrade" => Want::Latest,
                _ => Want::Absent,
            };
            tool.apply(w, self.args(want), &names)?;
        }
        Ok(())
    }
}

/// The dnf commands that make `names` as `want` says: `install` for the
/// missing ones, `upgrade` for the installed ones of a `latest` plan,
/// `remove`.
fn runs(want: Want, names: &[String], installed: &Installed) -> Vec<(&'static str, Vec<String>)> {
    let (there, missing): (Vec<String>, Vec<String>) = names
        .iter()
        .cloned()
        .partition(|n| installed.contains_key(n));
    let runs = match want {
        Want::Absent => vec![("remove", names.to_vec())],
        Want::Present => vec![("install", missing)],
        Want::Latest => vec![("install", missing), ("upgrade", there)],
    };
    runs.into_iter().filter(|(_, n)| !n.is_empty()).collect()
}

/// The steps of dnf's transaction table: the rows under `Installing:`,
/// `Installing dependencies:`, `Upgrading:`, `Removing:`, `Removing
/// dependent packages:`, `Removing unused dependencies:` ... (` NAME ARCH
/// VERSION REPO SIZE`; a long name on a line of its own, the rest on the
/// next). An upgrade's old version, and a removal's, are the installed
/// ones.
fn transaction(out: &str, installed: &Installed) -> Vec<Step> {
    #[derive(Clone, Copy)]
    enum Section {
        Install,
        Upgrade,
        Remove,
        Other,
    }
    let mut steps = Vec::new();
    let mut section = None;
    let mut name: Option<&str> = None;
    for line in out.lines() {
        if !line.starts_with(' ') {
            name = None;
            section = line.strip_suffix(':').map(|head| {
                let verb = head.split(' ').next().unwrap_or_default();
                match verb {
                    "Installing" => Section::Install,
                    "Upgrading" | "Downgrading" => Section::Upgrade,
                    "Removing" => Section::Remove,
                    _ => Section::Other,
                }
            });
            continue;
        }
        let Some(section) = section else { continue };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (pkg, version) = match (name, words.as_slice()) {
            (_, ["replacing", ..]) => continue,
            (None, [one]) => {
                name = Some(one);
                continue;
            }
            (None, [pkg, _arch, version, ..]) => (*pkg, *version),
            (Some(pkg), [_arch, version, ..]) => (pkg, *version),
            _ => continue,
        };
        name = None;
        let (pkg, version) = (pkg.to_owned(), version.to_owned());
        steps.push(match section {
            Section::Install => Step::Install { name: pkg, version },
            Section::Upgrade => Step::Upgrade {
                from: installed.get(&pkg).cloned().unwrap_or_default(),
                name: pkg,
                to: version,
            },
            Section::Remove => Step::Remove { name: pkg, version },
            Section::Other => continue,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output (stdout; "Operation aborted." goes to stderr) of dnf
    // 4.14, Debian 12's, on cs-dnf, the test host.
    const INSTALL: &str = "\
Last metadata expiration check: 0:00:22 ago on Mon Dec  7 07:35:06 2026.
Dependencies resolved.
================================================================================
 Package            Architecture     Version            Repository         Size
================================================================================
Installing:
 cs-tool            noarch           1.0-1              cs-rpms           6.0 k
Installing dependencies:
 cs-hello           noarch           1.1-1              cs-rpms           6.0 k

Transaction Summary
================================================================================
Install  2 Packages

Total size: 12 k
Installed size: 59  
";

    const UPGRADE: &str = "\
Last metadata expiration check: 0:00:23 ago on Mon Dec  7 07:35:06 2026.
Dependencies resolved.
================================================================================
 Package            Architecture     Version            Repository         Size
================================================================================
Upgrading:
 cs-hello           noarch           1.1-1              cs-rpms           6.0 k

Transaction Summary
================================================================================
Upgrade  1 Package

Total size: 6.0 k
";

    const REMOVE: &str = "\
Dependencies resolved.
================================================================================
 Package            Architecture     Version           Repository          Size
================================================================================
Removing:
 cs-hello           noarch           1.0-1             @cs-rpms            30  
Removing dependent packages:
 cs-tool            noarch           1.0-1             @cs-rpms            29  

Transaction Summary
================================================================================
Remove  2 Packages

Freed space: 59  
";

    fn lines(out: &str, installed: &Installed, named: &str) -> Vec<String> {
        let named = [named.to_owned()];
        transaction(out, installed)
            .iter()
            .map(|s| s.line(&named))
            .collect()
    }

    #[test]
    fn an_install_names_its_dependencies() {
        assert_eq!(
            lines(INSTALL, &Installed::new(), "cs-tool"),
            [
                "install cs-tool 1.0-1",
                "install cs-hello 1.1-1 (dependency)"
            ]
        );
    }

    #[test]
    fn an_upgrade_is_from_the_installed_version() {
        let installed: Installed = [("cs-hello".to_owned(), "1.0-1".to_owned())].into();
        assert_eq!(
            lines(UPGRADE, &installed, "cs-hello"),
            ["upgrade cs-hello 1.0-1 -> 1.1-1"]
        );
    }

    #[test]
    fn a_removal_names_its_dependents() {
        assert_eq!(
            lines(REMOVE, &Installed::new(), "cs-hello"),
            ["remove cs-hello 1.0-1", "remove cs-tool 1.0-1 (dependency)"]
        );
    }

    #[test]
    fn nothing_to_do_is_no_step() {
        let out = "Package cs-hello-1.0-1.noarch is already installed.\n\
                   Dependencies resolved.\nNothing to do.\nComplete!\n";
        assert!(transaction(out, &Installed::new()).is_empty());
    }

    #[test]
    fn a_long_name_on_a_line_of_its_own_and_unused_dependencies_are_read() {
        // dnf puts a name too long for its column on a line of its own.
        let out = "Removing:\n cs-tool   noarch   1.0-1   @cs-rpms   29  \n\
                   Removing unused dependencies:\n \
                   python3-a-very-long-package-name-indeed\n\
                   \x20                   noarch   2:3.1-4.fc39   @updates   1.2 M\n\
                   Installing weak dependencies:\n x  noarch  1-1  r  1 k\n\
                   \x20    replacing  y.noarch 0.9-1\n\nTransaction Summary\n";
        assert_eq!(
            lines(out, &Installed::new(), "cs-tool"),
            [
                "remove cs-tool 1.0-1",
                "remove python3-a-very-long-package-name-indeed 2:3.1-4.fc39 (dependency)",
                "install x 1-1 (dependency)",
            ]
        );
    }

    #[test]
    fn latest_installs_the_missing_and_upgrades_the_others() {
        let installed: Installed = [("cs-hello".to_owned(), "1.0-1".to_owned())].into();
        let names = ["cs-hello".to_owned(), "cs-tool".to_owned()];
        let runs = runs(Want::Latest, &names, &installed);
        assert_eq!(
            runs,
            [
                ("install", vec!["cs-tool".to_owned()]),
                ("upgrade", vec!["cs-hello".to_owned()])
            ]
        );
    }
}
