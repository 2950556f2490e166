//! dnf, where rpm is: planned from dnf's own simulation (`--assumeno`),
//! the installed packages read from rpm's database.
//!
//! The simulation runs from dnf's cache only (`-C`): it never refreshes
//! the metadata, so check mode writes nothing, and a run plans from the
//! metadata the host has, as apt's lists. The changes run with that
//! metadata too (it does not expire during them), so they do what the
//! simulation said; `update_cache()` refreshes it (`dnf makecache`).
//! `latest` is one transaction, `dnf install --best`: it installs the
//! missing packages and upgrades the others to the newest version.
//! dnf does not wait for another dnf's lock (`exit_on_lock`): it fails at
//! once, and the error says to try again.

use super::{Installed, Manager, Step, Tool, Want};
use crate::ops::{CommandOutput, OpError};

pub(super) struct Dnf;

/// What every change takes: the cached metadata, however old (as the
/// simulation read it).
const KEEP_METADATA: &str = "--setopt=*.metadata_expire=-1";

/// The architectures rpm knows (dnf's `_BASEARCH_MAP`, `src`): the second
/// word of a row of dnf's transaction table.
const ARCHES: &[&str] = &[
    "aarch64",
    "alpha",
    "alphaev4",
    "alphaev45",
    "alphaev5",
    "alphaev56",
    "alphaev6",
    "alphaev67",
    "alphaev68",
    "alphaev7",
    "alphapca56",
    "amd64",
    "armv5tejl",
    "armv5tel",
    "armv5tl",
    "armv6hl",
    "armv6l",
    "armv7hl",
    "armv7hnl",
    "armv7l",
    "armv8hl",
    "armv8l",
    "athlon",
    "geode",
    "i386",
    "i486",
    "i586",
    "i686",
    "ia32e",
    "ia64",
    "loongarch64",
    "mips",
    "mips64",
    "mips64el",
    "mipsel",
    "noarch",
    "ppc",
    "ppc64",
    "ppc64iseries",
    "ppc64le",
    "ppc64p7",
    "ppc64pseries",
    "riscv128",
    "riscv32",
    "riscv64",
    "s390",
    "s390x",
    "sh3",
    "sh4",
    "sh4a",
    "sparc",
    "sparc64",
    "sparc64v",
    "sparcv8",
    "sparcv9",
    "sparcv9v",
    "src",
    "x86_64",
];

/// What dnf says when it leaves out a name it does not know (`strict=0`)
/// or a repository it has no metadata of (`skip_if_unavailable`), and
/// goes on with the rest: a run that does less than asked.
const SKIPPED: &[&str] = &[
    "No match for argument",
    "Unable to find a match",
    "Cache-only enabled but no cache",
];

impl Manager for Dnf {
    fn program(&self) -> &'static str {
        "dnf"
    }

    fn detect(&self) -> bool {
        super::tool(self.program()).is_some() && super::tool("rpm").is_some()
    }

    fn common(&self) -> Vec<String> {
        vec!["--setopt=exit_on_lock=True".into()]
    }

    fn refused(&self, out: &CommandOutput) -> bool {
        SKIPPED.iter().any(|s| out.stderr.contains(s))
    }

    fn refresh(&self) -> &'static [&'static str] {
        &["makecache", "-q"]
    }

    fn args(&self, want: Want) -> &'static [&'static str] {
        match want {
            Want::Present => &["install", "-y", "-q", KEEP_METADATA],
            Want::Latest => &["install", "--best", "-y", "-q", KEEP_METADATA],
            Want::Absent => &["remove", "-y", "-q", KEEP_METADATA],
        }
    }

    /// The installed packages, from `rpm -qa`, versions as dnf shows them
    /// (`EPOCH:` only when there is one, not `0:`).
    fn installed(&self, tool: &Tool) -> Result<Installed, OpError> {
        let rpm = super::tool("rpm").map_or_else(|| "rpm".into(), |p| p.display().to_string());
        let query = "%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n";
        let argv = [rpm, "-qa".into(), "--qf".into(), query.into()];
        let out = tool.read(&argv)?;
        if out.status != 0 {
            return Err(tool.failed_argv(&argv, &out));
        }
        Ok(rpm_installed(&out.stdout))
    }

    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let args: &[&str] = match want {
            Want::Present => &["--assumeno", "-C", "install"],
            Want::Latest => &["--assumeno", "-C", "install", "--best"],
            Want::Absent => &["--assumeno", "-C", "remove"],
        };
        let out = tool.run_read_only(args, names)?;
        let found = transaction(&out.stdout, installed);
        // --assumeno ends a transaction with status 1 ("Operation
        // aborted." on stderr); one with nothing to do ends with 0.
        let aborted = out.stderr.contains("Operation aborted") || out.status == 0;
        if !aborted || (found.is_empty() && out.status != 0) || self.refused(&out) {
            return Err(tool.failed(args, names, &out));
        }
        Ok(found)
    }
}

/// The installed packages of `rpm -qa`'s `NAME\tVERSION` lines; a
/// package that declares `Epoch: 0` has its version without it, as dnf
/// shows it.
fn rpm_installed(out: &str) -> Installed {
    super::installed_of(out.lines().filter_map(|l| {
        let (name, version) = l.split_once('\t')?;
        let version = version.strip_prefix("0:").unwrap_or(version);
        Some((name.to_owned(), version.to_owned()))
    }))
}

/// The steps of dnf's transaction table: the rows under `Installing:`,
/// `Installing dependencies:`, `Upgrading:`, `Removing:`, `Removing
/// dependent packages:`, `Removing unused dependencies:` ... (` NAME ARCH
/// VERSION REPO SIZE`, with `     replacing  OLD.ARCH VERSION` lines for
/// what it obsoletes, which goes). A row starts with one space; a value
/// too wide for its column (dnf's `fmtColumns`) ends its line, and the
/// row goes on on the next, indented deeper. A row whose second word is
/// no architecture is no package's (a module's, a group's). An upgrade's
/// old version, and a removal's, are the installed ones.
fn transaction(out: &str, installed: &Installed) -> Vec<Step> {
    #[derive(Clone, Copy, PartialEq)]
    enum Section {
        Install,
        Upgrade,
        Remove,
        Other,
    }
    // Each row: its section, its words (the continuation lines' too),
    // what it replaces (name, version).
    type Row<'a> = (Section, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let mut rows: Vec<Row> = Vec::new();
    let mut section = None;
    let mut open = false;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let indent = line.len() - line.trim_start_matches(' ').len();
        match (indent, section, words.as_slice()) {
            (0, _, _) => {
                open = false;
                section = line.strip_suffix(':').map(|head| {
                    match head.split(' ').next().unwrap_or_default() {
                        "Installing" => Section::Install,
                        "Upgrading" | "Downgrading" => Section::Upgrade,
                        "Removing" => Section::Remove,
                        _ => Section::Other,
                    }
                });
            }
            (_, None, _) | (_, _, []) => open = false,
            (1, Some(section), _) => {
                rows.push((section, words, Vec::new()));
                open = true;
            }
            (_, Some(_), ["replacing", old, version, ..]) if open => {
                if let Some(row) = rows.last_mut() {
                    let name = old.rsplit_once('.').map_or(*old, |(name, _)| name);
                    row.2.push((name, version));
                }
            }
            (_, Some(_), _) if open => {
                if let Some(row) = rows.last_mut() {
                    row.1.extend(words);
                }
            }
            _ => {}
        }
    }
    let mut steps = Vec::new();
    for (section, words, replaced) in rows {
        let [pkg, arch, version, ..] = words.as_slice() else {
            continue;
        };
        if !ARCHES.contains(arch) {
            continue;
        }
        let (pkg, version) = ((*pkg).to_owned(), (*version).to_owned());
        let old = |name: &str| super::installed_version(installed, name).unwrap_or_default();
        steps.push(match section {
            Section::Install => Step::Install {
                name: pkg.clone(),
                version,
            },
            Section::Upgrade => Step::Upgrade {
                from: old(&pkg),
                name: pkg.clone(),
                to: version,
            },
            Section::Remove => Step::Remove {
                name: pkg.clone(),
                version,
            },
            Section::Other => continue,
        });
        for (name, version) in replaced.into_iter().filter(|r| r.0 != pkg) {
            let step = Step::Remove {
                name: name.to_owned(),
                version: version.to_owned(),
            };
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
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
        let installed = rpm_installed("cs-hello\t1.0-1\n");
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
    fn a_long_name_on_a_line_of_its_own_unused_dependencies_and_obsoleted_are_read() {
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
                "remove y 0.9-1 (dependency)",
            ]
        );
    }

    // Made by dnf 4.14's own Output.calcColumns and fmtColumns (a pipe,
    // no terminal: 80 columns when the widest values fit, else wider),
    // given these rows: a value too wide for its column ends the line.
    const WRAPPED_VERSION: &str = "\
Installing:
 python3-idna             x86_64 3.4-5.20230901git1.fc39        cs-rpms   6.0 k
 python3-setuptools-wheel noarch 67.7.2-7.202309.fc39           appstream 471 k
 libffi                   noarch 3.4.4-4.fc39.git1              appstream  40 k
 python3-pip-wheel-extras noarch 23.2.1-1.20230901git1a2b3c4.fc39
                                                                appstream 8.8 M

Transaction Summary
";

    const WRAPPED_NAME_AND_VERSION: &str = "\
Upgrading:
 kernel-modules-extra noarch 6.5.12-300.fc39.20231201git1a2b3cd updates   8.8 M
 kernel-modules-extra2
                      x86_64 6.5.12-300.fc39.20231201git1a2b3cde
                                                                appstream 8.8 M
     replacing  kernel-modules-old.x86_64 6.5.1-1.fc39

Transaction Summary
";

    #[test]
    fn a_row_wrapped_after_its_version_is_one_step() {
        assert_eq!(
            lines(WRAPPED_VERSION, &Installed::new(), "libffi"),
            [
                "install python3-idna 3.4-5.20230901git1.fc39 (dependency)",
                "install python3-setuptools-wheel 67.7.2-7.202309.fc39 (dependency)",
                "install libffi 3.4.4-4.fc39.git1",
                "install python3-pip-wheel-extras 23.2.1-1.20230901git1a2b3c4.fc39 (dependency)",
            ]
        );
    }

    #[test]
    fn a_row_wrapped_after_its_name_and_version_is_one_step_and_replaces() {
        let installed = rpm_installed(
            "kernel-modules-extra\t6.5.11-300.fc39\nkernel-modules-extra2\t6.5.11-300.fc39\n\
             kernel-modules-old\t6.5.1-1.fc39\n",
        );
        assert_eq!(
            lines(WRAPPED_NAME_AND_VERSION, &installed, "kernel-modules-extra"),
            [
                "upgrade kernel-modules-extra 6.5.11-300.fc39 -> \
                 6.5.12-300.fc39.20231201git1a2b3cd",
                "upgrade kernel-modules-extra2 6.5.11-300.fc39 -> \
                 6.5.12-300.fc39.20231201git1a2b3cde (dependency)",
                "remove kernel-modules-old 6.5.1-1.fc39 (dependency)",
            ]
        );
    }

    #[test]
    fn rows_of_no_package_are_no_steps() {
        // A module stream's row: name, stream, no architecture.
        let out = "Enabling module streams:\n nodejs                  18\n\n\
                   Installing:\n cs-tool  noarch  1.0-1  cs-rpms  6.0 k\n";
        assert_eq!(
            lines(out, &Installed::new(), "cs-tool"),
            ["install cs-tool 1.0-1"]
        );
    }

    #[test]
    fn an_installonly_upgrade_installs_the_new_and_removes_the_oldest() {
        // `dnf install --best kernel` with installonly_limit=2.
        let out = "Installing:\n kernel   x86_64   6.5.12-300.fc39   updates   8.8 M\n\
                   Removing:\n kernel   x86_64   6.5.6-300.fc39    @updates  0  \n";
        let installed = rpm_installed("kernel\t6.5.6-300.fc39\nkernel\t6.5.10-300.fc39\n");
        let steps = transaction(out, &installed);
        assert_eq!(
            lines(out, &installed, "kernel"),
            [
                "install kernel 6.5.12-300.fc39",
                "remove kernel 6.5.6-300.fc39"
            ]
        );
        let after = rpm_installed("kernel\t6.5.10-300.fc39\nkernel\t6.5.12-300.fc39\n");
        assert_eq!(super::super::unkept(&steps, &after), None);
        let kept = rpm_installed("kernel\t6.5.6-300.fc39\nkernel\t6.5.12-300.fc39\n");
        assert_eq!(
            super::super::unkept(&steps, &kept).as_deref(),
            Some("kernel 6.5.6-300.fc39 is still in the package database")
        );
    }

    #[test]
    fn an_epoch_of_0_is_left_out_as_dnf_does() {
        let installed = rpm_installed("a\t0:1.0-1\nb\t2:1.0-1\nc\t1.0-1\n");
        let versions: Vec<String> = ["a", "b", "c"]
            .iter()
            .filter_map(|n| super::super::installed_version(&installed, n))
            .collect();
        assert_eq!(versions, ["1.0-1", "2:1.0-1", "1.0-1"]);
    }
}
