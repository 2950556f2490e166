//! Inventories: hosts, groups of hosts and groups, and variables, read
//! from chopsticks' own TOML format or from Ansible inventories (INI and
//! YAML) as they are.

mod ini;
mod native;
mod yaml;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// How to reach a host, from an inventory: each `None` leaves ssh's own
/// configuration in charge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The address to connect to, when it is not the host's name
    /// (`ansible_host`).
    pub address: Option<String>,
    /// The login user (`ansible_user`).
    pub user: Option<String>,
    /// The ssh port (`ansible_port`).
    pub port: Option<u16>,
    /// Run as this user through sudo (`ansible_become`,
    /// `ansible_become_user`).
    pub sudo: Option<String>,
}

impl Settings {
    /// `other`'s values where it has them, ours elsewhere.
    fn overlay(&mut self, other: &Settings) {
        let Settings {
            address,
            user,
            port,
            sudo,
        } = other.clone();
        self.address = address.or(self.address.take());
        self.user = user.or(self.user.take());
        self.port = port.or(self.port.take());
        self.sudo = sudo.or(self.sudo.take());
    }
}

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

    /// Reads an inventory file: chopsticks' TOML format (`.toml`), an
    /// Ansible YAML inventory (`.yml`, `.yaml`), or else an Ansible INI
    /// inventory (Ansible's `hosts` files have no extension).
    ///
    /// # Errors
    /// What cannot be read, with the file and the line.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InventoryError::at(path, None, format!("cannot read the inventory: {e}"))
        })?;
        let mut inventory = Inventory::new();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => native::read(&text, path, &mut inventory)?,
            Some("yml" | "yaml") => yaml::read(&text, path, &mut inventory)?,
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

    /// The hosts of a group and of its children, in inventory order.
    pub fn group_hosts(&self, name: &str) -> Vec<&str> {
        match name {
            "all" => self.hosts.iter().map(|h| h.name.as_str()).collect(),
            "ungrouped" => {
                let grouped = self.memberships();
                self.hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .filter(|h| grouped.get(h).is_none_or(Vec::is_empty))
                    .collect()
            }
            _ => {
                let members = self.members(name);
                self.hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .filter(|h| members.contains(h))
                    .collect()
            }
        }
    }

    /// The hosts of group `name` (not `all` or `ungrouped`) and of its
    /// children, in no order.
    fn members(&self, name: &str) -> HashSet<&str> {
        let mut members = HashSet::new();
        let mut seen = HashSet::new();
        let mut todo = vec![name];
        while let Some(g) = todo.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(entry) = self.group(g) {
                members.extend(entry.hosts.iter().map(String::as_str));
                todo.extend(entry.children.iter().map(String::as_str));
            }
        }
        members
    }

    /// The groups each host is in (of its own or through children), but
    /// `all` and `ungrouped`: computed once for all hosts, so that
    /// resolving many hosts costs one pass over the groups, not one each.
    fn memberships(&self) -> HashMap<&str, Vec<&str>> {
        let mut of: HashMap<&str, Vec<&str>> = HashMap::new();
        for group in &self.groups {
            let name = group.name.as_str();
            if name == "all" || name == "ungrouped" {
                continue;
            }
            for host in self.members(name) {
                of.entry(host).or_default().push(name);
            }
        }
        of
    }

    /// The depth of every group below `all`: 1 for top-level ones, a
    /// parent's + 1 for its children (the deepest path counts).
    fn depths(&self) -> HashMap<&str, usize> {
        let mut depth: HashMap<&str, usize> = HashMap::new();
        let parents: HashSet<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.children.iter().map(String::as_str))
            .collect();
        let mut todo: Vec<(&str, usize)> = self
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .filter(|g| !parents.contains(g) && *g != "all")
            .map(|g| (g, 1))
            .collect();
        if let Some(all) = self.group("all") {
            todo.extend(all.children.iter().map(|c| (c.as_str(), 1)));
        }
        while let Some((g, d)) = todo.pop() {
            if depth.get(g).is_some_and(|&old| old >= d) || d > self.groups.len() + 1 {
                continue;
            }
            depth.insert(g, d);
            if let Some(entry) = self.group(g) {
                todo.extend(entry.children.iter().map(|c| (c.as_str(), d + 1)));
            }
        }
        depth
    }

    /// A host's variables and settings, as Ansible merges them: `all`'s,
    /// then its groups' from the shallowest to the deepest (by name where
    /// equally deep), then its own.
    pub fn resolve(&self, host: &str) -> (Settings, Map<String, Value>) {
        let mut resolved = self.resolve_all(&[host]);
        resolved.pop().unwrap_or_default()
    }

    /// [`resolve`](Inventory::resolve) for each of `hosts`, in their order:
    /// the groups are walked once for all of them.
    pub fn resolve_all(&self, hosts: &[&str]) -> Vec<(Settings, Map<String, Value>)> {
        let memberships = self.memberships();
        let depths = self.depths();
        let (all, ungrouped) = (self.group("all"), self.group("ungrouped"));
        hosts
            .iter()
            .map(|host| {
                let mut groups: Vec<(&str, usize)> = memberships
                    .get(host)
                    .into_iter()
                    .flatten()
                    .map(|g| (*g, depths.get(g).copied().unwrap_or(1)))
                    .collect();
                groups.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
                // A host in no other group is in `ungrouped`, which may have variables.
                let alone = ungrouped.filter(|_| groups.is_empty());
                let mut vars = Map::new();
                let mut settings = Settings::default();
                let entries = groups.iter().filter_map(|(g, _)| self.group(g));
                for g in all.into_iter().chain(alone).chain(entries) {
                    vars.extend(g.vars.clone());
                    settings.overlay(&g.settings);
                }
                if let Some(h) = self.host(host) {
                    vars.extend(h.vars.clone());
                }
                // Ansible's connection variables, then native settings over them.
                let mut resolved = from_ansible_vars(&vars);
                resolved.overlay(&settings);
                if let Some(h) = self.host(host) {
                    resolved.overlay(&h.settings);
                }
                (resolved, vars)
            })
            .collect()
    }

    /// Refuses children that name no group and groups that contain
    /// themselves.
    fn check_groups(&self, file: &Path) -> Result<(), InventoryError> {
        for g in &self.groups {
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

/// Settings from Ansible's connection variables.
fn from_ansible_vars(vars: &Map<String, Value>) -> Settings {
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| match vars.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let become_ = match vars.get("ansible_become") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_lowercase().as_str(), "yes" | "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    };
    Settings {
        address: text(&["ansible_host", "ansible_ssh_host"]),
        user: text(&["ansible_user", "ansible_ssh_user"]),
        port: text(&["ansible_port", "ansible_ssh_port"]).and_then(|p| p.parse().ok()),
        sudo: become_.then(|| text(&["ansible_become_user"]).unwrap_or_else(|| "root".into())),
    }
}

/// Refuses a host name that is not one (see [`chopsticks::names::host`]):
/// it becomes ssh's destination. `docker:NAME` names a container.
pub(crate) fn check_host(name: &str) -> Result<(), String> {
    chopsticks::names::host(name.strip_prefix("docker:").unwrap_or(name))
}

/// Refuses a connection variable whose value ssh would hand to a shell
/// (`%h`, `%r` in a `ProxyCommand`) or read as an option: the address,
/// the user and the become user, by [`chopsticks::names`]' rules, and a
/// port that is not one.
pub(crate) fn check_var(key: &str, value: &Value) -> Result<(), String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Ok(()),
    };
    let checked = match key {
        "ansible_host" | "ansible_ssh_host" => chopsticks::names::host(&text),
        "ansible_user" | "ansible_ssh_user" | "ansible_become_user" => {
            chopsticks::names::user(&text)
        }
        "ansible_port" | "ansible_ssh_port" => match text.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("{text:?} is not a port (1 to 65535)")),
        },
        _ => Ok(()),
    };
    checked.map_err(|e| format!("{key}: {e}"))
}

/// [`check_var`] for every variable of a map.
pub(crate) fn check_vars<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<(), String> {
    vars.into_iter().try_for_each(|(k, v)| check_var(k, v))
}

/// A scalar as Ansible reads one written on a host's line of an INI
/// inventory: numbers, booleans and quoted strings as such, the rest text.
pub(crate) fn literal(text: &str) -> Value {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(f) = t.parse::<f64>() {
        if t.contains('.') {
            return Value::from(f);
        }
    }
    match t {
        "True" | "true" => return Value::Bool(true),
        "False" | "false" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return Value::String(t[1..t.len() - 1].to_owned());
        }
    }
    Value::String(t.to_owned())
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

    #[test]
    fn groups_children_and_variable_precedence() {
        let mut inv = Inventory::new();
        inv.add_to_group("web", "w1");
        inv.add_to_group("web", "w2");
        inv.add_to_group("db", "d1");
        inv.host_mut("loose");
        inv.add_child("prod", "web");
        inv.add_child("prod", "db");
        inv.group_mut("all").vars.insert("x".into(), "all".into());
        inv.group_mut("prod").vars.insert("x".into(), "prod".into());
        inv.group_mut("web").vars.insert("x".into(), "web".into());
        inv.group_mut("web")
            .vars
            .insert("ansible_user".into(), "deploy".into());
        inv.host_mut("w2").vars.insert("x".into(), "w2".into());
        assert_eq!(inv.group_hosts("prod"), ["w1", "w2", "d1"]);
        assert_eq!(inv.group_hosts("ungrouped"), ["loose"]);
        assert_eq!(inv.group_hosts("all").len(), 4);
        let (settings, vars) = inv.resolve("w1");
        assert_eq!(vars["x"], "web", "the deeper group wins");
        assert_eq!(settings.user.as_deref(), Some("deploy"));
        assert_eq!(inv.resolve("w2").1["x"], "w2", "the host's own win");
        assert_eq!(inv.resolve("d1").1["x"], "prod");
        assert_eq!(inv.resolve("loose").1["x"], "all");
    }

    #[test]
    fn ansible_connection_variables_become_settings() {
        let vars: Map<String, Value> = serde_json::from_str(
            r#"{"ansible_host": "10.0.0.5", "ansible_port": "2222",
                "ansible_become": "yes", "ansible_user": "ops"}"#,
        )
        .unwrap();
        assert_eq!(
            from_ansible_vars(&vars),
            Settings {
                address: Some("10.0.0.5".into()),
                user: Some("ops".into()),
                port: Some(2222),
                sudo: Some("root".into()),
            }
        );
        assert_eq!(literal("80"), Value::from(80));
        assert_eq!(literal("'quoted'"), Value::from("quoted"));
        assert_eq!(literal("True"), Value::Bool(true));
        assert_eq!(literal("1.5"), Value::from(1.5));
        assert_eq!(literal("web"), Value::from("web"));
    }
}
