//! The order Ansible lists a group's hosts in: what a pattern's hosts
//! come in, and what a subscript (`web[0]`) counts.

use std::collections::{HashMap, HashSet};

use super::Inventory;

impl Inventory {
    /// The hosts of a group and of its children, in the order Ansible
    /// lists them (what `web[0]` counts in): the group's own hosts as
    /// listed, then its children's, then theirs, level by level. `all`'s
    /// children are `ungrouped`, those it names, then every group that
    /// has no parent yet in the order the groups were made, as Ansible
    /// reconciles an inventory. (Below the children Ansible's own order is
    /// that of a hash set, which varies from run to run; here it is the
    /// order of listing.)
    pub fn group_hosts(&self, name: &str) -> Vec<&str> {
        let ungrouped = || self.ungrouped();
        let mut hosts = Vec::new();
        let mut seen = HashSet::new();
        for group in self.descendants(name) {
            let own: Vec<&str> = match group {
                "ungrouped" => ungrouped(),
                _ => self
                    .group(group)
                    .map(|g| g.hosts.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            hosts.extend(own.into_iter().filter(|h| seen.insert(*h)));
        }
        hosts
    }

    /// `ungrouped`'s hosts: those it names that are in no other group,
    /// then the others in no group, in inventory order.
    fn ungrouped(&self) -> Vec<&str> {
        let grouped = self.memberships();
        let alone = |h: &&str| grouped.get(h).is_none_or(Vec::is_empty);
        let named = self
            .group("ungrouped")
            .map(|g| g.hosts.as_slice())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        named
            .iter()
            .map(String::as_str)
            .chain(self.hosts.iter().map(|h| h.name.as_str()))
            .filter(alone)
            .filter(|h| seen.insert(*h))
            .collect()
    }

    /// `name` and the groups below it, level by level, each once.
    fn descendants<'s>(&'s self, name: &'s str) -> Vec<&'s str> {
        let mut order = vec![name];
        let mut seen: HashSet<&str> = HashSet::from([name]);
        let mut at = 0;
        while at < order.len() {
            let children = match order[at] {
                "all" => self.all_children(),
                g => self
                    .group(g)
                    .map(|g| g.children.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            order.extend(children.into_iter().filter(|c| seen.insert(*c)));
            at += 1;
        }
        order
    }

    /// `all`'s child groups, as Ansible makes them: `ungrouped`, those
    /// the inventory puts under `all`, then each group (in the order they
    /// were made) that no group made before it, nor `all`, is an ancestor
    /// of.
    fn all_children(&self) -> Vec<&str> {
        let mut children = vec!["ungrouped"];
        if let Some(all) = self.group("all") {
            children.extend(all.children.iter().map(String::as_str));
        }
        // The earliest-made ancestor of each group (-1: all itself).
        let index = |g: &str| -> isize {
            match g {
                "all" | "ungrouped" => -1,
                g => self.group_index.get(g).map_or(isize::MAX, |&i| i as isize),
            }
        };
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for g in &self.groups {
            for c in &g.children {
                parents.entry(c.as_str()).or_default().push(g.name.as_str());
            }
        }
        let mut earliest: HashMap<&str, Option<isize>> = HashMap::new();
        for g in &self.groups {
            let name = g.name.as_str();
            if name == "all" || name == "ungrouped" {
                continue;
            }
            if earliest_ancestor(name, &parents, &index, &mut earliest) >= index(name) {
                children.push(name);
            }
        }
        let mut seen = HashSet::new();
        children.retain(|c| seen.insert(*c));
        children
    }
}

/// The lowest making order among `group`'s ancestors (memoized in
/// `earliest`: `None` while being walked; a cycle, which loading refuses,
/// is cut there).
fn earliest_ancestor<'s>(
    group: &'s str,
    parents: &HashMap<&'s str, Vec<&'s str>>,
    index: &dyn Fn(&str) -> isize,
    earliest: &mut HashMap<&'s str, Option<isize>>,
) -> isize {
    // Walked without recursion: a chain of groups may be long.
    let mut todo = vec![(group, false)];
    while let Some((g, expanded)) = todo.pop() {
        let ps = parents.get(g).map(Vec::as_slice).unwrap_or_default();
        if expanded {
            let low = ps
                .iter()
                .map(|p| match earliest.get(p) {
                    Some(Some(e)) => index(p).min(*e),
                    _ => index(p),
                })
                .min()
                .unwrap_or(isize::MAX);
            earliest.insert(g, Some(low));
        } else if !earliest.contains_key(g) {
            earliest.insert(g, None);
            todo.push((g, true));
            todo.extend(
                ps.iter()
                    .filter(|p| !earliest.contains_key(*p))
                    .map(|p| (*p, false)),
            );
        }
    }
    earliest[group].unwrap_or(isize::MAX)
}
