//! A host's variables and settings, merged from its groups as Ansible
//! merges them.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{GroupEntry, Inventory, Settings};
use crate::CliError;

/// A host's settings and merged variables.
pub type Resolved = (Settings, Map<String, Value>);

/// The names of this machine that select it without an inventory entry,
/// as Ansible's implicit localhost: reached by a local tunnel, with `all`'s
/// variables.
pub const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The most (host, group) memberships, through children, that resolving
/// an inventory walks (a chain of 8,000 groups each inside the next makes
/// 32 million: Ansible walks them all, a run here refuses them).
pub const MAX_MEMBERSHIPS: usize = 10_000_000;

/// The variable that orders groups of the same depth when their variables
/// merge (higher wins; 1 by default); not itself a variable of the hosts.
const PRIORITY: &str = "ansible_group_priority";

impl GroupEntry {
    /// Its `ansible_group_priority`, 1 when it has none.
    pub(super) fn priority(&self) -> Result<i64, String> {
        match self.vars.get(PRIORITY) {
            None => Ok(1),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or(1)),
            // Python's int() of a float: toward zero.
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.abs() < 9e15) => {
                Ok(n.as_f64().map_or(1, |f| f.trunc() as i64))
            }
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                Ok(s.trim().parse().unwrap_or(1))
            }
            Some(other) => Err(format!("{PRIORITY} is {other}, not a whole number")),
        }
    }
}

impl Inventory {
    /// The hosts of group `name` and of its children, in no order, each
    /// step of the walk (a group visited, a host found) paid from `budget`.
    fn members(&self, name: &str, budget: &mut usize) -> Result<HashSet<&str>, CliError> {
        let mut members = HashSet::new();
        let mut seen = HashSet::new();
        let mut todo = vec![name];
        while let Some(g) = todo.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(entry) = self.group(g) {
                let steps = 1 + entry.hosts.len();
                *budget = budget.checked_sub(steps).ok_or_else(|| {
                    CliError::Bound(format!(
                        "the inventory's groups nest so that its hosts are in more than \
                         {MAX_MEMBERSHIPS} group memberships (children of children ...), more \
                         than one run takes: flatten the groups"
                    ))
                })?;
                members.extend(entry.hosts.iter().map(String::as_str));
                todo.extend(entry.children.iter().map(String::as_str));
            }
        }
        Ok(members)
    }

    /// The groups each host is in (of its own or through children), but
    /// `all` and `ungrouped`: computed once for all hosts, so that
    /// resolving many hosts costs one pass over the groups, not one each.
    /// The pass is bounded: [`MAX_MEMBERSHIPS`].
    pub(super) fn memberships(&self) -> Result<HashMap<&str, Vec<&str>>, CliError> {
        let mut budget = MAX_MEMBERSHIPS;
        let mut of: HashMap<&str, Vec<&str>> = HashMap::new();
        for group in &self.groups {
            let name = group.name.as_str();
            if name == "all" || name == "ungrouped" {
                continue;
            }
            for host in self.members(name, &mut budget)? {
                of.entry(host).or_default().push(name);
            }
        }
        Ok(of)
    }

    /// The depth of every group below `all`: 1 for top-level ones, a
    /// parent's + 1 for its children, the longest way down counting (as
    /// Ansible's `Group.depth`): in one pass in topological order.
    fn depths(&self) -> HashMap<&str, usize> {
        let names = self.groups.iter().map(|g| g.name.as_str());
        let mut depth: HashMap<&str, usize> = names.clone().map(|g| (g, 1)).collect();
        let mut parents: HashMap<&str, usize> = HashMap::new();
        for g in self.groups.iter().filter(|g| g.name != "all") {
            for c in &g.children {
                *parents.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut ready: Vec<&str> = names
            .filter(|g| *g != "all" && !parents.contains_key(g))
            .collect();
        // Groups in a cycle (which loading refuses) are never ready: they
        // keep the depth found so far.
        while let Some(g) = ready.pop() {
            let (d, Some(entry)) = (depth[g], self.group(g)) else {
                continue;
            };
            for c in &entry.children {
                let c = c.as_str();
                if let Some(cd) = depth.get_mut(c) {
                    *cd = (*cd).max(d + 1);
                }
                if let Some(left) = parents.get_mut(c) {
                    *left -= 1;
                    if *left == 0 {
                        ready.push(c);
                    }
                }
            }
        }
        depth
    }

    /// A host's variables and settings, as Ansible merges them: `all`'s,
    /// then its groups' from the shallowest to the deepest (by
    /// `ansible_group_priority`, then name, where equally deep); then the
    /// same from `group_vars/`; then its own, then `host_vars/`'s.
    ///
    /// # Errors
    /// Connection variables chopsticks cannot honour (see
    /// [`Settings::from_ansible_vars`]), naming the host.
    pub fn resolve(&self, host: &str) -> Result<Resolved, CliError> {
        let mut resolved = self.resolve_all(&[host])?;
        Ok(resolved.pop().unwrap_or_default())
    }

    /// [`resolve`](Inventory::resolve) for each of `hosts`, in their order:
    /// the groups are walked once for all of them.
    ///
    /// # Errors
    /// As [`resolve`](Inventory::resolve), for the first host with such
    /// variables.
    pub fn resolve_all(&self, hosts: &[&str]) -> Result<Vec<Resolved>, CliError> {
        let memberships = self.memberships()?;
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
                let priority = |g: &str| self.group(g).map_or(Ok(1), GroupEntry::priority);
                groups.sort_by_key(|&(g, depth)| (depth, priority(g).unwrap_or(1), g));
                // A host in no other group is in `ungrouped`, which may have
                // variables; the implicit localhost is in no group.
                let implicit = self.host(host).is_none() && LOCALHOST_NAMES.contains(host);
                let alone = ungrouped.filter(|_| groups.is_empty() && !implicit);
                let mut vars = Map::new();
                let mut settings = Settings::default();
                let entries = groups.iter().filter_map(|(g, _)| self.group(g));
                let ordered: Vec<&GroupEntry> =
                    all.into_iter().chain(alone).chain(entries).collect();
                for g in &ordered {
                    let own = g.vars.iter().filter(|(k, _)| *k != PRIORITY);
                    vars.extend(own.map(|(k, v)| (k.clone(), v.clone())));
                    settings.overlay(&g.settings);
                }
                // Then group_vars/ (all's, then the groups' in the same
                // order), the host's own, and host_vars/: Ansible's order.
                for g in &ordered {
                    vars.extend(g.file_vars.clone());
                }
                if let Some(h) = self.host(host) {
                    vars.extend(h.vars.clone());
                    vars.extend(h.file_vars.clone());
                }
                if implicit {
                    vars.insert("ansible_connection".into(), "local".into());
                }
                // Ansible's connection variables, then native settings over them.
                let mut resolved =
                    Settings::from_ansible_vars(&vars).map_err(|message| CliError::Connection {
                        host: (*host).to_owned(),
                        message,
                    })?;
                resolved.overlay(&settings);
                if let Some(h) = self.host(host) {
                    resolved.overlay(&h.settings);
                }
                Ok((resolved, vars))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let (settings, vars) = inv.resolve("w1").unwrap();
        assert_eq!(vars["x"], "web", "the deeper group wins");
        assert_eq!(settings.user.as_deref(), Some("deploy"));
        assert_eq!(
            inv.resolve("w2").unwrap().1["x"],
            "w2",
            "the host's own win"
        );
        assert_eq!(inv.resolve("d1").unwrap().1["x"], "prod");
        assert_eq!(inv.resolve("loose").unwrap().1["x"], "all");
        // Equally deep: by name, unless ansible_group_priority says otherwise.
        inv.add_to_group("aaa", "d1");
        inv.group_mut("aaa").vars.insert("x".into(), "aaa".into());
        inv.add_to_group("zzz", "d1");
        inv.group_mut("zzz").vars.insert("x".into(), "zzz".into());
        assert_eq!(inv.resolve("d1").unwrap().1["x"], "zzz");
        inv.group_mut("aaa")
            .vars
            .insert(PRIORITY.into(), "10".into());
        let (_, vars) = inv.resolve("d1").unwrap();
        assert_eq!(vars["x"], "aaa");
        assert!(!vars.contains_key(PRIORITY), "not a host variable");
        inv.group_mut("aaa")
            .vars
            .insert(PRIORITY.into(), "high".into());
        let err = inv.check_groups(Path::new("inv")).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }
}
