//! Ansible's host patterns over an inventory: `all` (or `*`), group and
//! host names, globs (`web*`), regexes (`~web\d+`), subscripts
//! (`web[0]`, `web[1:3]`, `web[-1]`), `@FILE` (terms a file lists, one
//! per line), joined by `:` or `,`; a term with `&` intersects, with `!`
//! excludes. As in Ansible, the plain terms are joined first, then the `&`
//! ones applied, then the `!` ones, whatever their order.

use std::collections::HashSet;

use crate::inventory::{Inventory, LOCALHOST_NAMES, MAX_MEMBERSHIPS};

/// The hosts `pattern` selects from `inventory`, in the order Ansible
/// selects them: the plain terms' hosts in the terms' order (a group's in
/// its listing order, see [`Inventory::group_hosts`]), then narrowed by
/// the `&` terms and the `!` terms. A pattern of only `&` and `!` terms
/// starts from `all`. `localhost` (or `127.0.0.1`, `::1`), when the
/// inventory has no such host, is this machine, as Ansible's implicit
/// localhost.
///
/// # Errors
/// A term that matches nothing (a typo should not shrink a run
/// silently), a bad regex or subscript, an unreadable `@FILE`.
pub fn select<'a>(inventory: &'a Inventory, pattern: &str) -> Result<Vec<&'a str>, String> {
    let split = split(inventory, pattern);
    let mut lists = Vec::new();
    for term in &split {
        if let Some(path) = term.strip_prefix('@') {
            lists.push(host_list(term, path)?);
        }
    }
    let mut listed = lists.iter();
    let mut terms: Vec<&str> = Vec::new();
    for term in split {
        match term.starts_with('@') {
            // `@FILE`: its lines are terms of the pattern (a retry file's
            // hosts, or groups), as Ansible's `--limit @FILE` reads it.
            true => terms.extend(
                listed
                    .next()
                    .into_iter()
                    .flat_map(|t| t.lines().map(str::trim)),
            ),
            false => terms.push(term),
        }
    }
    terms.retain(|t| !t.is_empty());
    if terms.is_empty() {
        return Err("an empty pattern: give group or host names, or all".into());
    }
    let plain: Vec<&str> = terms
        .iter()
        .copied()
        .filter(|t| !t.starts_with(['&', '!']))
        .collect();
    let and = terms.iter().copied().filter(|t| t.starts_with('&'));
    let not = terms.iter().copied().filter(|t| t.starts_with('!'));
    let plain = match plain.is_empty() {
        // `!db1` alone means every host but db1, as in Ansible.
        true => vec!["all"],
        false => plain,
    };
    let mut hosts: Vec<&'a str> = Vec::new();
    let mut chosen: HashSet<&'a str> = HashSet::new();
    let mut budget = MAX_MEMBERSHIPS;
    for term in plain {
        for host in term_hosts(inventory, term, true, &mut budget)? {
            if chosen.insert(host) {
                hosts.push(host);
            }
        }
    }
    // Each `&` term narrows, then the `!` terms all go at once: one pass
    // over the hosts each, however many terms.
    for term in and {
        let that: HashSet<&str> = term_hosts(inventory, &term[1..], false, &mut budget)?
            .into_iter()
            .collect();
        hosts.retain(|h| that.contains(h));
    }
    let mut excluded: HashSet<&str> = HashSet::new();
    for term in not {
        excluded.extend(term_hosts(inventory, &term[1..], false, &mut budget)?);
    }
    hosts.retain(|h| !excluded.contains(h));
    Ok(hosts)
}

/// The hosts `pattern` selects as Ansible's `--limit` selects them: those
/// [`select`] picks, in the order of `all` (what a play over `all`
/// limited by it runs in, batch by batch). What `-l` means in the kit.
///
/// # Errors
/// As [`select`].
pub fn limit<'a>(inventory: &'a Inventory, pattern: &str) -> Result<Vec<&'a str>, String> {
    let picked: HashSet<&str> = select(inventory, pattern)?.into_iter().collect();
    let mut hosts: Vec<&'a str> = inventory
        .group_hosts("all")
        .into_iter()
        .filter(|h| picked.contains(h))
        .collect();
    // The implicit localhost is in no group, `all` included.
    for name in LOCALHOST_NAMES {
        if picked.contains(name) && inventory.host(name).is_none() {
            hosts.push(name);
        }
    }
    Ok(hosts)
}

/// Terms split as Ansible splits them: on `,`; else, when the whole
/// pattern is one address (`fe80::1`, `[::1]:22`, `host:22`) or names a
/// host of the inventory (`docker:web`), it is one term; else on `:` and
/// blanks outside `[...]` (a subscript's or a range's `:` stays; a regex
/// with a `:` needs commas between terms).
fn split<'p>(inventory: &Inventory, pattern: &'p str) -> Vec<&'p str> {
    let pattern = pattern.trim();
    if pattern.contains(',') {
        return pattern.split(',').map(str::trim).collect();
    }
    if is_address(pattern) || inventory.host(pattern).is_some() {
        return vec![pattern];
    }
    crate::hosts::split_outside_brackets(pattern, ':')
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect()
}

/// An IPv6 address (bare, or in brackets with a port), or a host name or
/// IPv4 address with a port.
fn is_address(pattern: &str) -> bool {
    if pattern.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    if let Some((ip, port)) = pattern
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
    {
        return ip.parse::<std::net::Ipv6Addr>().is_ok() && is_port(port);
    }
    pattern.split_once(':').is_some_and(|(name, port)| {
        is_port(port)
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    })
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The hosts one term (without its `&` or `!`) stands for, as Ansible
/// enumerates them: a host of that name for a `plain` term; else the hosts
/// of the groups it matches (by name, glob or `~regex`), in group order;
/// then, when no group matched or the term is a glob, a regex or has a
/// `.`, the hosts it matches; then the subscript, if any.
fn term_hosts<'a>(
    inv: &'a Inventory,
    term: &str,
    plain: bool,
    budget: &mut usize,
) -> Result<Vec<&'a str>, String> {
    let no_match = || {
        format!(
            "`{term}` matches no host or group of the inventory (groups: {})",
            inv.group_names().join(", ")
        )
    };
    if term.starts_with('@') {
        return Err(format!(
            "`{term}`: a host list is read only where the pattern names it, not from another \
             list or after & or !"
        ));
    }
    // A plain term that names a host is that host, before any group of
    // the name (after `&` or `!`, as in Ansible, groups come first).
    if let Some(host) = inv.host(term).filter(|_| plain) {
        return Ok(vec![host.name.as_str()]);
    }
    let (expr, subscript) = split_subscript(term);
    let literal = !expr.starts_with('~') && !expr.contains(['*', '?', '[']);
    let matcher: Box<dyn Fn(&str) -> bool> = match expr.strip_prefix('~') {
        Some(regex) => {
            let re = bounded_regex(term, regex)?;
            // Python's `re.match`: anchored at the start only.
            Box::new(move |name| re.find(name).is_some_and(|m| m.start() == 0))
        }
        None if expr.contains(['*', '?', '[']) => Box::new(|name| glob(expr, name)),
        None => Box::new(|name| name == expr),
    };
    let mut found: Vec<&'a str> = Vec::new();
    // A plain name is looked up; a glob or a regex goes over every name.
    let groups: Vec<&str> = match literal {
        true => inv.group_named(expr).into_iter().collect(),
        false => inv
            .group_names()
            .into_iter()
            .filter(|g| matcher(g))
            .collect(),
    };
    for group in &groups {
        let hosts = inv.group_hosts_within(group, budget).ok_or_else(|| {
            format!(
                "the pattern walks more than {MAX_MEMBERSHIPS} groups and hosts of groups (at \
                 `{term}`): name fewer groups, or flatten the inventory's groups"
            )
        })?;
        found.extend(hosts);
    }
    let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
    if groups.is_empty() || special {
        match literal {
            true => found.extend(inv.host(expr).map(|h| h.name.as_str())),
            false => found.extend(inv.hosts().map(|h| h.name.as_str()).filter(|h| matcher(h))),
        }
    }
    if found.is_empty() && groups.is_empty() {
        match LOCALHOST_NAMES.into_iter().find(|n| *n == expr) {
            Some(name) => found.push(name),
            None => return Err(no_match()),
        }
    }
    match subscript {
        // As Ansible: no hosts (an empty group) stay none, whatever the subscript.
        Some(_) if found.is_empty() => Ok(found),
        None => Ok(found),
        Some(subscript) => subscript.apply(&found).ok_or_else(|| {
            format!(
                "`{term}`: the subscript is outside the {} hosts `{expr}` matches",
                found.len()
            )
        }),
    }
}

/// A term's `[N]`, `[-N]`, `[A:B]` or `[A:]` (and the old `[A-B]`), as
/// Ansible reads them; other brackets belong to a glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    /// One host, from the end when negative.
    Index(i64),
    /// From A to B, both included (to the end when `None`).
    Range(usize, Option<usize>),
}

impl Subscript {
    /// The hosts it picks, as Python's indexing and slicing do: a range
    /// past the end is cut short, an index past the end is `None`.
    fn apply<'a>(self, hosts: &[&'a str]) -> Option<Vec<&'a str>> {
        let len = hosts.len();
        match self {
            Subscript::Index(i) => {
                let at = if i < 0 {
                    len.checked_sub(i.unsigned_abs() as usize)?
                } else {
                    i as usize
                };
                hosts.get(at).map(|h| vec![*h])
            }
            // Ansible takes `[A:0]` for `[A]`.
            Subscript::Range(a, Some(0)) => hosts.get(a).map(|h| vec![*h]),
            Subscript::Range(a, end) => {
                let end = end.map_or(len, |b| b.saturating_add(1).min(len));
                Some(hosts.get(a..end.max(a)).unwrap_or_default().to_vec())
            }
        }
    }
}

/// `expr[subscript]`, where the subscript is one Ansible reads.
fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    if term.starts_with('~') {
        return (term, None);
    }
    let Some(inner) = term.strip_suffix(']') else {
        return (term, None);
    };
    let Some(open) = inner.rfind('[') else {
        return (term, None);
    };
    let (expr, sub) = (&inner[..open], &inner[open + 1..]);
    if expr.is_empty() {
        return (term, None);
    }
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let subscript = match sub.find([':', '-']).filter(|&i| i > 0) {
        Some(i) if number(&sub[..i]) && (sub[i + 1..].is_empty() || number(&sub[i + 1..])) => {
            let (a, b) = (&sub[..i], &sub[i + 1..]);
            let (Ok(a), b) = (a.parse(), b.parse().ok()) else {
                return (term, None);
            };
            Subscript::Range(a, b)
        }
        _ => {
            let digits = sub.strip_prefix('-').unwrap_or(sub);
            match number(digits).then(|| sub.parse().ok()).flatten() {
                Some(i) => Subscript::Index(i),
                None => return (term, None),
            }
        }
    };
    (expr, Some(subscript))
}

/// The largest `@FILE` a pattern may read.
pub const MAX_HOST_LIST: u64 = 16 << 20;

/// The text of the host list `path` (of the term `term`), within its bound.
fn host_list(term: &str, path: &str) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("`{term}`: cannot read the host list {path}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_HOST_LIST + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("`{term}`: cannot read the host list {path}: {e}"))?;
    if text.len() as u64 > MAX_HOST_LIST {
        return Err(format!(
            "`{term}`: the host list is larger than {} MiB, the most one may be",
            MAX_HOST_LIST >> 20
        ));
    }
    Ok(text)
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

/// Globbing as Python's `fnmatch` (which Ansible uses): `*`, `?`, and
/// `[...]` classes (`[!...]` negates; a `]` first is one of the class;
/// a `[` never closed is itself). Greedy with one point to go back to, so
/// the cost is at most the product of the lengths, however many `*`.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ni < n.len() {
        if p.get(pi) == Some(&'*') {
            back = Some((pi + 1, ni));
            pi += 1;
            continue;
        }
        if let Some(width) = one(&p[pi..], n[ni]) {
            pi += width;
            ni += 1;
            continue;
        }
        match back {
            Some((after_star, from)) => {
                back = Some((after_star, from + 1));
                pi = after_star;
                ni = from + 1;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the pattern's first item (not `*`) matches `c`: how many
/// characters of the pattern it took, or `None`.
fn one(p: &[char], c: char) -> Option<usize> {
    match p.first()? {
        '?' => Some(1),
        '[' => {
            let mut j = 1;
            if p.get(j) == Some(&'!') {
                j += 1;
            }
            if p.get(j) == Some(&']') {
                j += 1;
            }
            let Some(end) = p[j.min(p.len())..]
                .iter()
                .position(|x| *x == ']')
                .map(|e| e + j)
            else {
                return (c == '[').then_some(1);
            };
            let (negate, class) = match &p[1..end] {
                ['!', rest @ ..] => (true, rest),
                class => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            (hit != negate).then_some(end + 1)
        }
        x => (*x == c).then_some(1),
    }
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
        // `all` lists ungrouped hosts first, then each group's.
        assert_eq!(sel("!web"), ["lonely", "db1", "db2"]);
        assert_eq!(sel("db:web1"), ["db1", "db2", "web1"]);
        assert_eq!(sel("web*"), ["web1", "web2", "web3"]);
        assert_eq!(sel("d?[!3]"), ["db1", "db2"]);
        assert_eq!(sel("~(web|db)1"), ["web1", "db1"]);
        assert_eq!(sel("~^db:!db2"), ["db1"]);
        assert_eq!(sel("web[0]"), ["web1"]);
        assert_eq!(sel("web[-1]"), ["web3"]);
        assert_eq!(sel("web[1:2]"), ["web2", "web3"]);
        assert_eq!(sel("ungrouped"), ["lonely"]);
        assert_eq!(sel("lonely"), ["lonely"]);
    }

    /// The second bug: a subscript counts in the group's own
    /// order, not the inventory's.
    #[test]
    fn subscripts_count_hosts_in_the_groups_listing_order() {
        let mut inv = Inventory::new();
        for host in ["a", "b", "c"] {
            inv.host_mut(host);
        }
        for host in ["c", "a", "b"] {
            inv.add_to_group("webservers", host);
        }
        inv.add_to_group("kids", "b");
        inv.add_child("webservers", "kids");
        let pick = |p: &str| select(&inv, p).unwrap();
        assert_eq!(pick("webservers[0]"), ["c"]);
        assert_eq!(pick("webservers[-1]"), ["b"]);
        assert_eq!(pick("webservers[1:]"), ["a", "b"]);
        assert_eq!(pick("webservers[0-1]"), ["c", "a"]);
        assert_eq!(
            pick("webservers[1:9]"),
            ["a", "b"],
            "a range is cut at the end"
        );
        assert_eq!(
            pick("webservers[2:0]"),
            ["b"],
            "[A:0] is [A], as in Ansible"
        );
        assert_eq!(pick("webservers"), ["c", "a", "b"]);
    }

    #[test]
    fn terms_match_as_ansibles_fnmatch_and_re_match_do() {
        let inv = inventory();
        let pick = |p: &str| select(&inv, p).unwrap();
        // re.match: anchored at the start, not the end.
        assert!(select(&inv, "~eb").is_err(), "re.match does not search");
        assert_eq!(pick("~web[12]"), ["web1", "web2"]);
        assert_eq!(pick("~db"), ["db1", "db2"]);
        // fnmatch: `^` is no negation, `[:2]` is a class, not a slice.
        assert_eq!(pick("db[^1]"), ["db1"]);
        assert!(select(&inv, "d?[12]").is_err(), "[12] is a subscript");
        assert_eq!(pick("db[!1]"), ["db2"]);
        assert_eq!(pick("web[:2]"), ["web2"]);
        // A term that is a host wins over patterns; the implicit localhost.
        assert_eq!(pick("localhost"), ["localhost"]);
        assert_eq!(pick("lonely:127.0.0.1"), ["lonely", "127.0.0.1"]);
        assert_eq!(pick("localhost[0]"), ["localhost"]);
        // An empty group with a subscript is no host, not an error.
        let mut inv = inv;
        inv.group_mut("empty");
        assert_eq!(select(&inv, "empty[0]").unwrap(), Vec::<&str>::new());
        // A subscript as large as it gets is cut at the end.
        assert_eq!(
            select(&inv, "web[0:18446744073709551615]").unwrap().len(),
            3
        );
        // `--limit` keeps all's order.
        assert_eq!(limit(&inv, "db:web1").unwrap(), ["web1", "db1", "db2"]);
    }

    /// `docker:NAME`, IPv6 addresses and `host:port` are one term each.
    #[test]
    fn addresses_survive_splitting() {
        let mut inv = inventory();
        for host in ["docker:web", "fe80::1", "::1", "web1:22"] {
            inv.host_mut(host);
        }
        let pick = |p: &str| select(&inv, p).unwrap();
        assert_eq!(pick("docker:web"), ["docker:web"]);
        assert_eq!(pick("fe80::1"), ["fe80::1"]);
        assert_eq!(pick("::1"), ["::1"]);
        assert_eq!(pick("web1:22"), ["web1:22"]);
        assert_eq!(pick("docker:web,db1"), ["docker:web", "db1"]);
        assert_eq!(pick("web:db"), ["web1", "web2", "web3", "db1", "db2"]);
        assert_eq!(pick("web db1"), ["web1", "web2", "web3", "db1"]);
    }

    /// Many stars cost at most the product of the lengths (going back to
    /// every star, as a recursive matcher does, would not end here).
    #[test]
    fn globs_are_bounded() {
        let name = "a".repeat(250);
        assert!(!glob(&format!("{}b", "*a".repeat(200)), &name));
        assert!(glob(&format!("{}a", "*a".repeat(100)), &name));
        assert!(glob("[]x]*[!]]", "]ab"));
        assert!(glob("a[", "a["));
    }

    #[test]
    fn what_matches_nothing_is_an_error() {
        let inv = inventory();
        for (pattern, says) in [
            ("webz", "matches no host or group"),
            ("web:!nope", "`nope` matches no host"),
            ("", "an empty pattern"),
            ("web[7]", "the subscript is outside the 3 hosts"),
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
