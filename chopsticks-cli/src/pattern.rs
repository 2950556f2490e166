//! Ansible's host patterns over an inventory: `all` (or `*`), group and
//! host names, globs (`web*`), regexes (`~web\d+`), subscripts
//! (`web[0]`, `web[1:3]`, `web[-1]`), `@FILE` (the hosts a file lists, one
//! per line), joined by `:` or `,`; a term with `&` intersects, with `!`
//! excludes. As in Ansible, the plain terms are joined first, then the `&`
//! ones applied, then the `!` ones, whatever their order.

use std::collections::HashSet;

use crate::inventory::Inventory;

/// The hosts `pattern` selects from `inventory`, in inventory order.
///
/// # Errors
/// A term that matches nothing (a typo should not shrink a run
/// silently), a bad regex or subscript, an unreadable `@FILE`.
pub fn select<'a>(inventory: &'a Inventory, pattern: &str) -> Result<Vec<&'a str>, String> {
    let terms = split(pattern);
    if terms.iter().all(|t| t.trim().is_empty()) {
        return Err("an empty pattern: give group or host names, or all".into());
    }
    let mut union: HashSet<&str> = HashSet::new();
    let mut intersect: Vec<HashSet<&str>> = Vec::new();
    let mut exclude: HashSet<&str> = HashSet::new();
    for term in terms.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if let Some(rest) = term.strip_prefix('!') {
            exclude.extend(term_hosts(inventory, rest)?);
        } else if let Some(rest) = term.strip_prefix('&') {
            intersect.push(term_hosts(inventory, rest)?.into_iter().collect());
        } else {
            union.extend(term_hosts(inventory, term)?);
        }
    }
    if union.is_empty() && (!intersect.is_empty() || !exclude.is_empty()) {
        // `!db1` alone means every host but db1, as in Ansible.
        union.extend(inventory.group_hosts("all"));
    }
    Ok(inventory
        .hosts()
        .map(|h| h.name.as_str())
        .filter(|h| union.contains(h))
        .filter(|h| intersect.iter().all(|set| set.contains(h)))
        .filter(|h| !exclude.contains(h))
        .collect())
}

/// Terms split on `,`, or on `:` when there is no comma (a `:` inside a
/// subscript stays; a regex with a `:` needs commas between terms).
fn split(pattern: &str) -> Vec<&str> {
    if pattern.contains(',') {
        return pattern.split(',').collect();
    }
    crate::hosts::split_outside_brackets(pattern, ':')
}

/// The hosts one term stands for.
fn term_hosts<'a>(inv: &'a Inventory, term: &str) -> Result<Vec<&'a str>, String> {
    let no_match = || {
        format!(
            "`{term}` matches no host or group of the inventory (groups: {})",
            inv.group_names().join(", ")
        )
    };
    let found: Vec<&'a str> = if term == "all" || term == "*" {
        inv.group_hosts("all")
    } else if let Some(path) = term.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("`{term}`: cannot read the host list {path}: {e}"))?;
        let mut hosts = Vec::new();
        for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let host = inv
                .host(name)
                .ok_or_else(|| format!("`{term}` lists {name}, which is not in the inventory"))?;
            hosts.push(host.name.as_str());
        }
        hosts
    } else if let Some(regex) = term.strip_prefix('~') {
        let re = bounded_regex(term, regex)?;
        by_name(inv, |name| re.is_match(name))
    } else if let Some((group, subscript)) = subscripted(inv, term) {
        let hosts = inv.group_hosts(group);
        slice(&hosts, subscript).ok_or_else(|| {
            format!(
                "`{term}`: the subscript [{subscript}] is not N, -N or A:B within the {} hosts of {group}",
                hosts.len()
            )
        })?
    } else if term.contains(['*', '?', '[']) {
        by_name(inv, |name| glob(term, name))
    } else if inv.has_group(term) {
        inv.group_hosts(term)
    } else if let Some(host) = inv.host(term) {
        vec![host.name.as_str()]
    } else {
        return Err(no_match());
    };
    if found.is_empty() && !inv.has_group(term) {
        return Err(no_match());
    }
    Ok(found)
}

/// The longest `~regex` a pattern may hold, in bytes.
pub const MAX_REGEX: usize = 1024;

/// The most memory a pattern's regex may compile to.
const REGEX_SIZE: usize = 256 << 10;

/// The regex of `term` (`~regex`), compiled within its bounds.
fn bounded_regex(term: &str, regex: &str) -> Result<regex_lite::Regex, String> {
    if regex.len() > MAX_REGEX {
        return Err(format!(
            "`~...`: the regex is {} bytes long, more than the {MAX_REGEX} a pattern's may be",
            regex.len()
        ));
    }
    regex_lite::RegexBuilder::new(regex)
        .size_limit(REGEX_SIZE)
        .build()
        .map_err(|e| match e.to_string() {
            e if e.contains("size limit") => format!(
                "`{term}`: the regex compiles to more than {} KiB, the most a pattern's may",
                REGEX_SIZE >> 10
            ),
            e => format!("`{term}`: {e}"),
        })
}

/// Hosts whose name matches, and the hosts of groups whose name matches.
fn by_name<'a>(inv: &'a Inventory, matches: impl Fn(&str) -> bool) -> Vec<&'a str> {
    let mut hosts: Vec<&'a str> = inv
        .hosts()
        .map(|h| h.name.as_str())
        .filter(|h| matches(h))
        .collect();
    for group in inv.group_names() {
        if matches(group) {
            hosts.extend(inv.group_hosts(group));
        }
    }
    hosts
}

/// `group[subscript]` where `group` is a group of the inventory.
fn subscripted<'t>(inv: &Inventory, term: &'t str) -> Option<(&'t str, &'t str)> {
    let (group, rest) = term.split_once('[')?;
    let subscript = rest.strip_suffix(']')?;
    inv.has_group(group).then_some((group, subscript))
}

/// Ansible's subscripts: `[0]`, `[-1]`, `[1:3]` (both ends included),
/// `[:2]`, `[2:]`.
fn slice<'a>(hosts: &[&'a str], subscript: &str) -> Option<Vec<&'a str>> {
    let len = hosts.len() as i64;
    let index = |s: &str, default: i64| -> Option<i64> {
        match s.trim() {
            "" => Some(default),
            n => {
                let n: i64 = n.parse().ok()?;
                Some(if n < 0 { len + n } else { n })
            }
        }
    };
    let (a, b) = match subscript.split_once(':') {
        None => {
            let i = index(subscript, -1)?;
            (i, i)
        }
        Some((a, b)) => (index(a, 0)?, index(b, len - 1)?),
    };
    if a < 0 || b >= len || a > b {
        return None;
    }
    Some(hosts[a as usize..=b as usize].to_vec())
}

/// Shell-style globbing: `*`, `?` and `[...]` classes.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('!' | '^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        let mut inv = Inventory::new();
        for (group, host) in [
            ("web", "web1"),
            ("web", "web2"),
            ("web", "web3"),
            ("db", "db1"),
            ("db", "db2"),
            ("prod", "web1"),
            ("prod", "web2"),
            ("prod", "db1"),
            ("staging", "web3"),
            ("staging", "db2"),
        ] {
            inv.add_to_group(group, host);
        }
        inv.host_mut("lonely");
        inv
    }

    fn sel(pattern: &str) -> Vec<String> {
        select(&inventory(), pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn ansible_patterns_select_as_ansible_does() {
        assert_eq!(sel("all").len(), 6);
        assert_eq!(sel("*").len(), 6);
        assert_eq!(sel("web:db"), ["web1", "web2", "web3", "db1", "db2"]);
        assert_eq!(sel("web,db1"), ["web1", "web2", "web3", "db1"]);
        assert_eq!(sel("web:&prod"), ["web1", "web2"]);
        assert_eq!(sel("web:!web1"), ["web2", "web3"]);
        assert_eq!(sel("!db1:web:&staging"), ["web3"]);
        assert_eq!(sel("all:!prod:!staging"), ["lonely"]);
        assert_eq!(sel("!web"), ["db1", "db2", "lonely"]);
        assert_eq!(sel("web*"), ["web1", "web2", "web3"]);
        assert_eq!(sel("d?[12]"), ["db1", "db2"]);
        assert_eq!(sel("~(web|db)1"), ["web1", "db1"]);
        assert_eq!(sel("~^db:!db2"), ["db1"]);
        assert_eq!(sel("web[0]"), ["web1"]);
        assert_eq!(sel("web[-1]"), ["web3"]);
        assert_eq!(sel("web[1:2]"), ["web2", "web3"]);
        assert_eq!(sel("ungrouped"), ["lonely"]);
        assert_eq!(sel("lonely"), ["lonely"]);
    }

    #[test]
    fn what_matches_nothing_is_an_error() {
        let inv = inventory();
        for (pattern, says) in [
            ("webz", "matches no host or group"),
            ("web:!nope", "`nope` matches no host"),
            ("", "an empty pattern"),
            ("web[7]", "the subscript [7]"),
            ("~(", "`~(`"),
            ("@/no/such/file", "cannot read the host list"),
            ("~(a{1000}){1000}", "more than 256 KiB"),
            (
                &format!("~{}", "a".repeat(MAX_REGEX + 1)),
                "more than the 1024",
            ),
        ] {
            let err = select(&inv, pattern).unwrap_err();
            assert!(err.contains(says), "{pattern}: {err}");
        }
        assert_eq!(select(&inv, "web:&db").unwrap(), Vec::<&str>::new());
    }
}
