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
mod vars_files;
mod yaml;

pub use connection::{boolean, Connection, Settings};
pub(crate) use connection::{check_host, check_var, check_vars};
pub use resolve::{Resolved, LOCALHOST_NAMES, MAX_MEMBERSHIPS};
pub use script::{MAX_SCRIPT_OUTPUT, SCRIPT_TIME};
pub use vars_files::MAX_VARS_FILES;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::hosts::MAX_HOSTS;

/// A host of an inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostEntry {
    /// Its name: what patterns, output and `{host}` use.
    pub name: String,
    /// How to reach it, as its own entry says.
    pub settings: Settings,
    /// Its own variables, from the inventory.
    pub vars: Map<String, Value>,
    /// Its variables from `host_vars/` beside the inventory, which win
    /// over [`vars`](HostEntry::vars).
    pub file_vars: Map<String, Value>,
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
    /// Variables for its hosts, from the inventory.
    pub vars: Map<String, Value>,
    /// Variables for its hosts from `group_vars/` beside the inventory:
    /// every group's of these win over every group's
    /// [`vars`](GroupEntry::vars).
    pub file_vars: Map<String, Value>,
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
    /// (parent, child) group indices of the children `add_child` made,
    /// likewise.
    linked: HashSet<(usize, usize)>,
    /// Host names the sources' ranges stood for so far, bounded by
    /// [`MAX_MEMBERSHIPS`] (a file of lines that each name the same
    /// 100,000 hosts adds no host but costs as many).
    expanded: usize,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Reads an inventory, and the `group_vars/` and `host_vars/` beside
    /// it (see [`read_vars_files`](Inventory::read_vars_files)): a file in
    /// chopsticks' TOML format (`.toml`), an Ansible YAML inventory
    /// (`.yml`, `.yaml`, `.json` written in that shape, or a file with no
    /// extension that is a YAML map), the JSON `ansible-inventory --list`
    /// prints, an inventory script (an executable starting with `#!`, run
    /// by Ansible's script protocol: see [`SCRIPT_TIME`] and
    /// [`MAX_SCRIPT_OUTPUT`] for its bounds), else an Ansible INI inventory
    /// (Ansible's `hosts` files have no extension); or a directory of
    /// them, read in name order as Ansible reads one (hidden files,
    /// `group_vars`, `host_vars`, and `.cfg`, `.retry`, `.txt`, `.md`,
    /// `.bak`, `~` ... files left out).
    ///
    /// # Errors
    /// What cannot be read, with the file and the line; a script that
    /// fails, takes too long or prints what is not an inventory.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::load_source(path)?;
        inventory.read_vars_files(path)?;
        Ok(inventory)
    }

    /// [`load`](Inventory::load) without the variables files.
    ///
    /// # Errors
    /// As [`load`](Inventory::load).
    pub fn load_source(path: &Path) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::new();
        inventory.read_source(path)?;
        Ok(inventory)
    }

    /// Reads the source `path` (as [`load`](Inventory::load) does, without
    /// the variables files) into this inventory, as Ansible reads several
    /// sources into one: a later source's `[prod:children]` may name a
    /// group an earlier one made. For several `-i` of a run: read each,
    /// then each one's [`read_vars_files`](Inventory::read_vars_files) (a
    /// source's `group_vars/` are for its groups wherever they are made).
    ///
    /// # Errors
    /// As [`load`](Inventory::load).
    pub fn read_source(&mut self, path: &Path) -> Result<(), InventoryError> {
        self.read_path(path, 0)?;
        if self.hosts.len() > MAX_HOSTS {
            return Err(InventoryError::at(
                path,
                None,
                format!("more than {MAX_HOSTS} hosts, the most an inventory may hold: split it"),
            ));
        }
        self.check_groups(path)
    }

    /// A file, or a directory of them in name order.
    fn read_path(&mut self, path: &Path, depth: usize) -> Result<(), InventoryError> {
        if !path.is_dir() {
            return self.read_file(path);
        }
        if depth >= 16 {
            return Err(InventoryError::at(
                path,
                None,
                "directories nest deeper than 16",
            ));
        }
        for name in names_in(path)? {
            let text = name.to_string_lossy();
            let ignored = text.starts_with('.')
                || ["group_vars", "host_vars", "vars_plugins"].contains(&text.as_ref())
                || IGNORED_EXTENSIONS.iter().any(|ext| text.ends_with(ext));
            if !ignored {
                self.read_path(&path.join(&name), depth + 1)?;
            }
        }
        Ok(())
    }

    /// One inventory file, by what it is.
    fn read_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        if script::is_script(path) {
            return script::run(path, self);
        }
        let text = read_bounded(path)?;
        let json = text.trim_start().starts_with('{');
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => native::read(&text, path, self),
            _ if json && script::is_list_json(&text) => {
                script::read_list(&text, path, self, &mut |_| Ok(Map::new()))
            }
            Some("yml" | "yaml" | "json") => yaml::read(&text, path, self),
            _ if json => yaml::read(&text, path, self),
            // As Ansible tries its yaml plugin before its ini one on a file
            // with no extension: a YAML map of groups is YAML.
            None if yaml::is_map(&text) => yaml::read(&text, path, self),
            _ => ini::read(&text, path, self),
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

    /// The hosts a host pattern of a source stands for (`web[01:20]`),
    /// within the inventory's bounds: at most [`MAX_HOSTS`] hosts in all,
    /// and [`MAX_MEMBERSHIPS`] names expanded over all its sources.
    pub(crate) fn expand(&mut self, pattern: &str) -> Result<Vec<String>, String> {
        let names = crate::hosts::expand(pattern)?;
        self.expanded = self.expanded.saturating_add(names.len());
        if self.expanded > MAX_MEMBERSHIPS {
            return Err(format!(
                "the host ranges stand for more than {MAX_MEMBERSHIPS} names in all (at \
                 `{pattern}`): split the inventory"
            ));
        }
        if self.hosts.len() > MAX_HOSTS {
            return Err(format!(
                "more than {MAX_HOSTS} hosts (at `{pattern}`), the most an inventory may \
                 hold: split it"
            ));
        }
        Ok(names)
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

    /// The host `name`, put in `group`, and made if it is new with `port`
    /// (when not 0) as its `ansible_port`: as Ansible adds a host, which
    /// takes the port only where the host is first named.
    pub(crate) fn add_host(
        &mut self,
        group: &str,
        name: &str,
        port: Option<u16>,
    ) -> &mut HostEntry {
        let new = self.host(name).is_none();
        self.add_to_group(group, name);
        let host = self.host_mut(name);
        if let Some(port) = port.filter(|p| *p != 0 && new) {
            host.vars.insert("ansible_port".into(), Value::from(port));
        }
        host
    }

    /// Makes `child` a child group of `parent` (both made if missing).
    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        self.group_mut(parent);
        let (p, c) = (self.group_index[parent], self.group_index[child]);
        if self.linked.insert((p, c)) {
            self.groups[p].children.push(child.to_owned());
        }
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

    /// The group of that name as the inventory spells it, if there is one
    /// (`all` and `ungrouped` always are).
    pub fn group_named(&self, name: &str) -> Option<&str> {
        match name {
            "all" => Some("all"),
            "ungrouped" => Some("ungrouped"),
            _ => self.group(name).map(|g| g.name.as_str()),
        }
    }

    /// Whether a group of that name exists (`all` and `ungrouped` always do).
    pub fn has_group(&self, name: &str) -> bool {
        name == "all" || name == "ungrouped" || self.group_index.contains_key(name)
    }

    /// Refuses a group priority that is no number and groups that contain
    /// themselves: one walk over the groups and their children.
    fn check_groups(&self, file: &Path) -> Result<(), InventoryError> {
        for g in &self.groups {
            g.priority().map_err(|e| {
                InventoryError::at(file, None, format!("the group {}: {e}", g.name))
            })?;
        }
        match self.cycle() {
            None => Ok(()),
            Some((group, through)) => Err(InventoryError::at(
                file,
                None,
                format!("the group {group} contains itself (through {through})"),
            )),
        }
    }

    /// A group that contains itself, and its parent on the way round:
    /// a depth-first walk without recursion, each group and child once.
    fn cycle(&self) -> Option<(&str, &str)> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark = vec![Mark::New; self.groups.len()];
        for start in 0..self.groups.len() {
            if mark[start] != Mark::New {
                continue;
            }
            // (group, index of its next child to look at)
            let mut stack = vec![(start, 0)];
            mark[start] = Mark::Open;
            while let Some(&mut (g, ref mut next)) = stack.last_mut() {
                match self.groups[g].children.get(*next) {
                    None => {
                        mark[g] = Mark::Done;
                        stack.pop();
                    }
                    Some(child) => {
                        *next += 1;
                        let c = self.group_index[child.as_str()];
                        match mark[c] {
                            Mark::Open => return Some((child, &self.groups[g].name)),
                            Mark::New => {
                                mark[c] = Mark::Open;
                                stack.push((c, 0));
                            }
                            Mark::Done => {}
                        }
                    }
                }
            }
        }
        None
    }
}

/// What Ansible leaves out of an inventory directory by name
/// (`INVENTORY_IGNORE_EXTS`).
const IGNORED_EXTENSIONS: [&str; 12] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// The names in the directory `dir`, sorted as Ansible sorts them (by
/// their bytes).
pub(crate) fn names_in(dir: &Path) -> Result<Vec<std::ffi::OsString>, InventoryError> {
    let listed = std::fs::read_dir(dir)
        .map_err(|e| InventoryError::at(dir, None, format!("cannot list it: {e}")))?;
    let mut names: Vec<_> = listed
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    Ok(names)
}

/// The largest inventory or variables file read.
pub const MAX_INVENTORY_FILE: u64 = 64 << 20;

/// The text of `path`, within [`MAX_INVENTORY_FILE`].
pub(crate) fn read_bounded(path: &Path) -> Result<String, InventoryError> {
    use std::io::Read as _;
    let fail = |e: std::io::Error| InventoryError::at(path, None, format!("cannot read it: {e}"));
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(MAX_INVENTORY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_INVENTORY_FILE {
        return Err(InventoryError::at(
            path,
            None,
            format!(
                "it is larger than {} MiB, the most read",
                MAX_INVENTORY_FILE >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|_| InventoryError::at(path, None, "it is not UTF-8 text"))
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
        let cycle = "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n";
        let err = load_text("hosts", cycle).unwrap_err();
        assert!(err.to_string().contains("contains itself"), "{err}");
        let ok = "[web]\nweb1 ansible_host=10.0.0.5 ansible_user=deploy ansible_port=2222\n";
        load_text("hosts", ok).unwrap();
    }
}
