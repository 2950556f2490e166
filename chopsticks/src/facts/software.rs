//! Facts about installed software: packages and services.

use std::io;

use serde::{Deserialize, Serialize};

use super::Fact;
use crate::remote;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPackage {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The installed packages, and which package manager knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packages {
    /// `dpkg`, `apk` or `rpm`.
    pub manager: String,
    /// The installed packages, by name.
    pub installed: Vec<InstalledPackage>,
}

/// One stanza of a package database: its `Key: value` fields.
struct Stanza(Vec<(String, String)>);

impl Stanza {
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// Stanzas of `Key: value` lines separated by blank lines (`dpkg`'s
/// status file; `apk`'s database with `K:value`).
fn stanzas(text: &str) -> impl Iterator<Item = Stanza> + '_ {
    text.split("\n\n").map(|stanza| {
        Stanza(
            stanza
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
        )
    })
}

/// The packages of a database whose stanzas name them with `name` and
/// `version`, those that `keep` accepts.
fn listed(
    text: &str,
    name: &str,
    version: &str,
    keep: impl Fn(&Stanza) -> bool,
) -> Vec<InstalledPackage> {
    stanzas(text)
        .filter(|s| keep(s))
        .filter_map(|s| {
            Some(InstalledPackage {
                name: s.get(name)?,
                version: s.get(version).unwrap_or_default(),
            })
        })
        .collect()
}

fn dpkg_of(status: &str) -> Vec<InstalledPackage> {
    listed(status, "Package", "Version", |s| {
        s.get("Status").is_some_and(|st| st.ends_with(" installed"))
    })
}

fn apk_of(db: &str) -> Vec<InstalledPackage> {
    listed(db, "P", "V", |_| true)
}

/// The installed packages: `dpkg`'s status file, `apk`'s database, or (the
/// one database that is no text file) `rpm -qa`. Not available on a host
/// without any of them.
///
/// # Errors
/// When a database is there but cannot be read.
#[remote]
pub fn packages() -> io::Result<Fact<Packages>> {
    let read = |path: &str| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let mut found = if let Some(status) = read("/var/lib/dpkg/status")? {
        Packages {
            manager: "dpkg".into(),
            installed: dpkg_of(&status),
        }
    } else if let Some(db) = read("/lib/apk/db/installed")? {
        Packages {
            manager: "apk".into(),
            installed: apk_of(&db),
        }
    } else if std::path::Path::new("/var/lib/rpm").is_dir() {
        let out = std::process::Command::new("rpm")
            .args(["-qa", "--qf", "%{NAME}\\t%{VERSION}-%{RELEASE}\\n"])
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "rpm -qa failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Packages {
            manager: "rpm".into(),
            installed: text
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(n, v)| InstalledPackage {
                    name: n.to_owned(),
                    version: v.to_owned(),
                })
                .collect(),
        }
    } else {
        return Ok(Fact::NotAvailable(
            "no package database on this host (dpkg, apk or rpm)".into(),
        ));
    };
    found.installed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Fact::Known(found))
}

/// A systemd unit's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The unit's name as asked for.
    pub name: String,
    /// Whether systemd knows the unit (`LoadState=loaded`).
    pub loaded: bool,
    /// `ActiveState`: `active`, `inactive`, `failed` ...
    pub active: String,
    /// `SubState`: `running`, `dead`, `exited` ...
    pub sub: String,
    /// `UnitFileState`: `enabled`, `disabled`, `static` ... (empty when none).
    pub enabled: String,
    /// Whether its unit file changed on disk since systemd read it
    /// (`NeedDaemonReload`): `systemctl daemon-reload` would pick it up.
    pub need_daemon_reload: bool,
}

/// Whether systemd runs this host (as `sd_booted` decides).
pub(crate) fn systemd_runs() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// A unit's state, from `systemctl show` (systemd has no file for it). Not
/// available where systemd does not run.
///
/// # Errors
/// When `systemctl` cannot be run.
#[remote]
pub fn service(name: String) -> io::Result<Fact<ServiceState>> {
    if !systemd_runs() {
        let init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
        return Ok(Fact::NotAvailable(format!(
            "systemd does not run on this host (PID 1 is {})",
            init.trim()
        )));
    }
    let out = std::process::Command::new("systemctl")
        .args([
            "show",
            "--property=LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload",
            "--",
        ])
        .arg(&name)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "systemctl show {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Fact::Known(ServiceState {
        loaded: get("LoadState") == "loaded",
        active: get("ActiveState"),
        sub: get("SubState"),
        enabled: get("UnitFileState"),
        need_daemon_reload: get("NeedDaemonReload") == "yes",
        name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_and_apk_databases_parse() {
        let status = "Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: zsh\nStatus: install ok installed\nVersion: 5.9\nDescription: x\n y\n";
        let p = dpkg_of(status);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("bash", "5.2-1")
        );
        let apk = apk_of("C:Q1x\nP:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36\n");
        assert_eq!(apk.len(), 2);
        assert_eq!(apk[1].name, "busybox");
    }
}
