//! chopsticks' own inventory format, in TOML:
//!
//! ```toml
//! [hosts.web1]
//! address = "10.0.0.5"          # what to connect to, when not the name
//! user = "deploy"
//! port = 2222
//! sudo = "root"                 # run as this user through sudo
//! identity_file = "~/.ssh/deploy" # the ssh key to log in with
//! vars = { role = "web", weight = 3, canary = true }
//!
//! [hosts."db[1:2].example"]     # a range names several hosts
//!
//! [hosts.builder]
//! connection = "docker"         # ssh (the default), local, or docker
//! address = "ci-builder-1"      # for docker: the container, when not the name
//!
//! [groups.web]
//! hosts = ["web1", "web[2:4]"]  # hosts named here need no [hosts] entry
//! vars = { http_port = 8080 }
//!
//! [groups.prod]
//! children = ["web", "db"]
//! user = "ops"                  # settings for the group's hosts (a host's own win)
//! ```
//!
//! Variables keep their TOML types (strings, integers, floats, booleans,
//! arrays, tables); `groups.all.vars` applies to every host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{check_host, check_vars, Inventory, InventoryError, Settings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    hosts: BTreeMap<String, Host>,
    #[serde(default)]
    groups: BTreeMap<String, Group>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Host {
    connection: Option<String>,
    address: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    sudo: Option<String>,
    #[serde(default)]
    vars: Map<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Group {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    children: Vec<String>,
    connection: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    sudo: Option<String>,
    #[serde(default)]
    vars: Map<String, Value>,
}

/// The line of a byte offset, counted from 1.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `[kind.name]` or `kind.name` first appears, for errors
/// found after parsing.
fn line_naming(text: &str, name: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(name)).map(|i| i + 1)
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let parsed: File = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        InventoryError::at(file, line, e.message().trim().to_owned())
    })?;
    // File order is lost in the maps: keep the order names appear in the text.
    let mut host_names: Vec<&String> = parsed.hosts.keys().collect();
    host_names.sort_by_key(|n| line_naming(text, n));
    for pattern in host_names {
        let host = &parsed.hosts[pattern];
        let line = line_naming(text, pattern);
        let names = inv
            .expand(pattern)
            .map_err(|e| InventoryError::at(file, line, e))?;
        let settings = settings(
            host.connection.as_deref(),
            host.address.clone(),
            host.user.clone(),
            host.port,
            host.identity_file.clone(),
            host.sudo.clone(),
        )
        .and_then(|s| check_vars(&host.vars).map(|()| s))
        .map_err(|e| InventoryError::at(file, line, format!("the host {pattern}: {e}")))?;
        for name in names {
            check_host(&name).map_err(|e| InventoryError::at(file, line, e))?;
            let entry = inv.host_mut(&name);
            entry.settings = settings.clone();
            entry.vars.extend(host.vars.clone());
        }
    }
    let mut group_names: Vec<&String> = parsed.groups.keys().collect();
    group_names.sort_by_key(|n| line_naming(text, n));
    for name in group_names {
        let group = &parsed.groups[name];
        let line = line_naming(text, name);
        let settings = settings(
            group.connection.as_deref(),
            None,
            group.user.clone(),
            group.port,
            group.identity_file.clone(),
            group.sudo.clone(),
        )
        .and_then(|s| check_vars(&group.vars).map(|()| s))
        .map_err(|e| InventoryError::at(file, line, format!("the group {name}: {e}")))?;
        for pattern in &group.hosts {
            let names = inv
                .expand(pattern)
                .map_err(|e| InventoryError::at(file, line, e))?;
            for host in names {
                inv.add_to_group(name, &host);
            }
        }
        for child in &group.children {
            if !parsed.groups.contains_key(child) {
                return Err(InventoryError::at(
                    file,
                    line,
                    format!("the group {name} names the child group {child}, which is not defined"),
                ));
            }
            inv.add_child(name, child);
        }
        let entry = inv.group_mut(name);
        entry.settings = settings;
        entry.vars.extend(group.vars.clone());
    }
    Ok(())
}

/// Settings from a host's or group's fields, checked (see
/// [`Settings::check`]).
fn settings(
    connection: Option<&str>,
    address: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    sudo: Option<String>,
) -> Result<Settings, String> {
    let connection = connection
        .map(|c| c.parse().map_err(|e| format!("connection: {e}")))
        .transpose()?;
    let settings = Settings {
        connection,
        address,
        user,
        port,
        identity_file,
        sudo,
    };
    settings.check()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[hosts.web1]
address = "10.0.0.5"
vars = { role = "web", weight = 3, canary = true }

[hosts."db[1:2].example"]
sudo = "postgres"

[groups.web]
hosts = ["web1", "web[2:3]"]
vars = { http_port = 8080 }

[groups.db]
hosts = ["db[1:2].example"]

[groups.prod]
children = ["web", "db"]
user = "ops"

[groups.all]
vars = { ntp = "time.example" }
"#;

    #[test]
    fn the_native_format_reads_hosts_groups_settings_and_typed_vars() {
        let mut inv = Inventory::new();
        read(SAMPLE, Path::new("fleet.toml"), &mut inv).unwrap();
        let names: Vec<&str> = inv.hosts().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["web1", "db1.example", "db2.example", "web2", "web3"]
        );
        assert_eq!(inv.group_hosts("prod").len(), 5);
        let (s, vars) = inv.resolve("web1").unwrap();
        assert_eq!(
            (s.address.as_deref(), s.user.as_deref()),
            (Some("10.0.0.5"), Some("ops"))
        );
        assert_eq!(vars["weight"], 3);
        assert_eq!(vars["canary"], true);
        assert_eq!(vars["http_port"], 8080);
        assert_eq!(vars["ntp"], "time.example");
        assert_eq!(
            inv.resolve("db2.example").unwrap().0.sudo.as_deref(),
            Some("postgres")
        );
    }

    #[test]
    fn what_cannot_be_read_names_file_and_line() {
        for (text, line, says) in [
            (
                "[hosts.web1]\nadress = \"x\"\n",
                2,
                "unknown field `adress`",
            ),
            ("[hosts.web1]\nport = 99999\n", 2, ""),
            (
                "\n[groups.web]\nhosts = [\"w[3:1]\"]\n",
                2,
                "runs backwards",
            ),
            ("[groups.web]\nchildren = [\"nope\"]\n", 1, "not defined"),
            ("[hosts.web1\n", 1, ""),
        ] {
            let err = read(text, Path::new("fleet.toml"), &mut Inventory::new()).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }
}
