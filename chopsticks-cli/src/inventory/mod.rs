//! Inventories: hosts, groups of hosts and groups, and variables, read
//! from chopsticks' own TOML format or from Ansible inventories (INI and
//! YAML) as they are.

mod connection;
mod ini;
mod native;
mod order;
mod python;
mod resolve;
mod script;
mod yaml;

pub use connection::{boolean, Connection, Settings};
pub(crate) use connection::{check_host, check_var, check_vars};
pub use resolve::{Resolved, LOCALHOST_NAMES};
pub use script::{MAX_SCRIPT_OUTPUT, SCRIPT_TIME};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// A host of an inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostEntry {
    /// Its name: what patterns, output and `{host}` use.
    pub name: String,
    /// How to reach it, as its own entry says.
    pub settings: Settings,
    /// Its own variables.
    pub vars: Map<String, Value>,
}

/// A group of an inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupEntry {
    /// Its name.
    pub name: String,
    /// Its hosts, by name.
    pub hosts: Vec<String>,
    /// Its child groups, whose hosts are its hosts too.
    pub children: Vec<String>,
    /// Settings for its hosts (a host's own win).
    pub settings: Settings,
    /// Variables for its hosts.
    pub vars: Map<String, Value>,
}

/// Why an inventory cannot be read: the file, the line (when there is
/// one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    /// The file.
    pub file: PathBuf,
    /// The line, counted from 1, when the error has one.
    pub line: Option<usize>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl InventoryError {
    pub(crate) fn at(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        InventoryError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for InventoryError {}

/// Hosts and groups. The group `all` holds every host, and `ungrouped`
/// those in no other group, as in Ansible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    hosts: Vec<HostEntry>,
    host_index: HashMap<String, usize>,
    groups: Vec<GroupEntry>,
    group_index: HashMap<String, usize>,
    /// (group, host) indices of the hosts `add_to_group` put in groups:
    /// adding is one lookup, not a scan of the group's list.
    listed: HashSet<(usize, usize)>,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Reads an inventory: chopsticks' TOML format (`.toml`), an Ansible
    /// YAML inventory (`.yml`, `.yaml`, or `.json` written in that shape),
    /// the JSON `ansible-inventory --list` prints, an inventory script (an
    /// executable starting with `#!`, run by Ansible's script protocol:
    /// see [`SCRIPT_TIME`] and [`MAX_SCRIPT_OUTPUT`] for its bounds), or
    /// else an Ansible INI inventory (Ansible's `hosts` files have no
    /// extension).
    ///
    /// # Errors
    /// What cannot be read, with the file and the line; a script that
    /// fails, takes too long or prints what is not an inventory.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::new();
        if script::is_script(path) {
            script::run(path, &mut inventory)?;
            inventory.check_groups(path)?;
            return Ok(inventory);
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            InventoryError::at(path, None, format!("cannot read the inventory: {e}"))
        })?;
        let json = text.trim_start().starts_with('{');
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => native::read(&text, path, &mut inventory)?,
            _ if json && script::is_list_json(&text) => {
                script::read_list(&text, path, &mut inventory, &mut |_| Ok(Map::new()))?
            }
            Some("yml" | "yaml" | "json") => yaml::read(&text, path, &mut inventory)?,
            _ if json => yaml::read(&text, path, &mut inventory)?,
            _ => ini::read(&text, path, &mut inventory)?,
        }
        inventory.check_groups(path)?;
        Ok(inventory)
    }

    /// Adds the hosts and groups of `other`; a host or group in both gets
    /// `other`'s settings and variables over ours.
    pub fn merge(&mut self, other: Inventory) {
        if self.hosts.is_empty() && self.groups.is_empty() {
            *self = other;
            return;
        }
        for host in other.hosts {
            let entry = self.host_mut(&host.name);
            entry.settings.overlay(&host.settings);
            entry.vars.extend(host.vars);
        }
        for group in other.groups {
            for h in &group.hosts {
                self.add_to_group(&group.name, h);
            }
            let entry = self.group_mut(&group.name);
            for c in group.children {
                push_once(&mut entry.children, c);
            }
            entry.settings.overlay(&group.settings);
            entry.vars.extend(group.vars);
        }
    }

    /// The host `name`, added (with no settings) if it is not there.
    pub fn host_mut(&mut self, name: &str) -> &mut HostEntry {
        let i = match self.host_index.get(name) {
            Some(&i) => i,
            None => {
                self.hosts.push(HostEntry {
                    name: name.to_owned(),
                    ..HostEntry::default()
                });
                self.host_index
                    .insert(name.to_owned(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[i]
    }

    /// The group `name`, added (empty) if it is not there.
    pub fn group_mut(&mut self, name: &str) -> &mut GroupEntry {
        let i = match self.group_index.get(name) {
            Some(&i) => i,
            None => {
                self.groups.push(GroupEntry {
                    name: name.to_owned(),
                    ..GroupEntry::default()
                });
                self.group_index
                    .insert(name.to_owned(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// Puts `host` in `group` (both made if missing), once.
    pub fn add_to_group(&mut self, group: &str, host: &str) {
        self.host_mut(host);
        self.group_mut(group);
        let (g, h) = (self.group_index[group], self.host_index[host]);
        if self.listed.insert((g, h)) {
            self.groups[g].hosts.push(host.to_owned());
        }
    }

    /// Makes `child` a child group of `parent` (both made if missing).
    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        push_once(&mut self.group_mut(parent).children, child.to_owned());
    }

    /// Every host, in the order the inventory first named them.
    pub fn hosts(&self) -> impl Iterator<Item = &HostEntry> {
        self.hosts.iter()
    }

    /// The host `name`.
    pub fn host(&self, name: &str) -> Option<&HostEntry> {
        self.host_index.get(name).map(|&i| &self.hosts[i])
    }

    /// Every group, `all` and `ungrouped` included.
    pub fn group_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = vec!["all", "ungrouped"];
        names.extend(
            self.groups
                .iter()
                .map(|g| g.name.as_str())
                .filter(|n| *n != "all" && *n != "ungrouped"),
        );
        names
    }

    fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.group_index.get(name).map(|&i| &self.groups[i])
    }

    /// Whether a group of that name exists (`all` and `ungrouped` always do).
    pub fn has_group(&self, name: &str) -> bool {
        name == "all" || name == "ungrouped" || self.group_index.contains_key(name)
    }

    /// Refuses children that name no group and groups that contain
    /// themselves.
    fn check_groups(&self, file: &Path) -> Result<(), InventoryError> {
        for g in &self.groups {
            g.priority().map_err(|e| {
                InventoryError::at(file, None, format!("the group {}: {e}", g.name))
            })?;
            for c in &g.children {
                if c == &g.name || self.group_hosts_cycle(c, &g.name) {
                    return Err(InventoryError::at(
                        file,
                        None,
                        format!("the group {} contains itself (through {c})", g.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `target` is reachable from `from` through children.
    fn group_hosts_cycle(&self, from: &str, target: &str) -> bool {
        let mut seen = HashSet::new();
        let mut todo = vec![from];
        while let Some(g) = todo.pop() {
            if g == target {
                return true;
            }
            if seen.insert(g) {
                if let Some(entry) = self.group(g) {
                    todo.extend(entry.children.iter().map(String::as_str));
                }
            }
        }
        false
    }
}

fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ssh would hand a shell through a ProxyCommand's `%h` or `%r`.
    const HOSTILE: [&str; 7] = [
        "x$(touch /tmp/cs-pwned)",
        "x`id`",
        "x;id",
        "x\\y",
        "x y",
        "-oProxyCommand=id",
        "x'y",
    ];

    fn load_text(name: &str, text: &str) -> Result<Inventory, InventoryError> {
        let dir = std::env::temp_dir().join(format!("cs-inv-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = Inventory::load(&path);
        std::fs::remove_dir_all(dir).unwrap();
        loaded
    }

    /// An address, user or host name that a shell could act on is refused
    /// with the inventory's file and line, in every format.
    #[test]
    fn values_that_reach_ssh_are_checked_with_file_and_line() {
        for bad in HOSTILE {
            let quoted = serde_json::to_string(bad).unwrap();
            let cases = [
                (
                    "hosts",
                    format!("[web]\nok1\nweb1 ansible_host={quoted}\n"),
                    3,
                ),
                (
                    "hosts",
                    format!("[web]\nweb1\n[web:vars]\nansible_user={quoted}\n"),
                    4,
                ),
                (
                    "hosts.yml",
                    format!("all:\n  hosts:\n    web1:\n      ansible_host: {quoted}\n"),
                    3,
                ),
                (
                    "hosts.yml",
                    format!("all:\n  vars:\n    ansible_become_user: {quoted}\n"),
                    3,
                ),
                (
                    "hosts.toml",
                    format!("[hosts.web1]\naddress = {quoted}\n"),
                    1,
                ),
                ("hosts.toml", format!("[groups.web]\nuser = {quoted}\n"), 1),
            ];
            for (file, text, line) in cases {
                let err = load_text(file, &text).unwrap_err();
                assert_eq!(err.line, Some(line), "{file} {bad:?}: {err}");
                assert!(
                    err.to_string().contains("is not a"),
                    "{file} {bad:?}: {err}"
                );
            }
        }
        // Host names themselves are ssh's destination.
        let err = load_text("hosts", "[web]\nx`id`\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("hosts:2: \"x`id`\" is not a host name"),
            "{err}"
        );
        let err = load_text("hosts.yml", "all:\n  hosts:\n    x;id:\n").unwrap_err();
        assert!(err.to_string().contains("is not a host name"), "{err}");
        let ok = "[web]\nweb1 ansible_host=10.0.0.5 ansible_user=deploy ansible_port=2222\n";
        load_text("hosts", ok).unwrap();
    }
}
