//! The order Ansible lists a group's hosts in: what a pattern's hosts
//! come in, and what a subscript (`web[0]`) counts.

use std::collections::HashSet;

use super::Inventory;

impl Inventory {
    /// The hosts of a group and of its children, in the order Ansible
    /// lists them (what `web[0]` counts in): the group's own hosts as
    /// listed, then its children's, then theirs, level by level. `all`'s
    /// children are `ungrouped`, those it names, then every group without
    /// a parent in the order the groups were made, as Ansible reconciles an
    /// inventory. (Below the children Ansible's own order is
    /// that of a hash set, which varies from run to run; here it is the
    /// order of listing.)
    pub fn group_hosts(&self, name: &str) -> Vec<&str> {
        // One walk is linear: each group and listing once.
        let mut unbounded = usize::MAX;
        self.group_hosts_within(name, &mut unbounded)
            .unwrap_or_default()
    }

    /// [`group_hosts`](Inventory::group_hosts), each group visited and
    /// host listed paid from `budget`; `None` when it runs out.
    pub(crate) fn group_hosts_within(&self, name: &str, budget: &mut usize) -> Option<Vec<&str>> {
        let mut hosts = Vec::new();
        let mut seen = HashSet::new();
        for group in self.descendants(name) {
            let own: Vec<&str> = match group {
                "ungrouped" => self.ungrouped(),
                _ => self
                    .group(group)
                    .map(|g| g.hosts.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            *budget = budget.checked_sub(1 + own.len())?;
            hosts.extend(own.into_iter().filter(|h| seen.insert(*h)));
        }
        Some(hosts)
    }

    /// `ungrouped`'s hosts: those it names that are in no other group,
    /// then the others in no group, in inventory order. (A host is in a
    /// group through children only if some group lists it: one pass over
    /// the listings tells.)
    fn ungrouped(&self) -> Vec<&str> {
        let grouped: HashSet<&str> = self
            .groups
            .iter()
            .filter(|g| g.name != "all" && g.name != "ungrouped")
            .flat_map(|g| g.hosts.iter().map(String::as_str))
            .collect();
        let named = self
            .group("ungrouped")
            .map(|g| g.hosts.as_slice())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        named
            .iter()
            .map(String::as_str)
            .chain(self.hosts.iter().map(|h| h.name.as_str()))
            .filter(|h| !grouped.contains(h))
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

    /// `all`'s child groups, as Ansible reconciles an inventory:
    /// `ungrouped`, those the inventory puts under `all`, then each group
    /// that has no parent, in the order the groups were made.
    fn all_children(&self) -> Vec<&str> {
        let mut children = vec!["ungrouped"];
        if let Some(all) = self.group("all") {
            children.extend(all.children.iter().map(String::as_str));
        }
        let parented: HashSet<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.children.iter().map(String::as_str))
            .collect();
        children.extend(
            self.groups
                .iter()
                .map(|g| g.name.as_str())
                .filter(|g| *g != "all" && !parented.contains(g)),
        );
        let mut seen = HashSet::new();
        children.retain(|c| seen.insert(*c));
        children
    }
}
