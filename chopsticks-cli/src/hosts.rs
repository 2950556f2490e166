//! Host lists as people type them: `web1,web2`, and ranges such as
//! `web[01:20].example` (numbers keep their width), `db[a:c]` and
//! `node[0:10:5]` (a step), as Ansible and pdsh read them.

/// The most names one list (or one name with ranges, `h[0:9][0:9]`
/// counting as their product) may stand for: past it, the list is refused
/// before anything is made.
pub const MAX_HOSTS: usize = 100_000;

/// The most ranges one name may have (`r[1:2]c[1:2]` has two).
pub const MAX_RANGES: usize = 8;

/// Every name a comma-separated list stands for, ranges expanded, in order.
///
/// # Errors
/// An empty name or a range that cannot be read, with what is wrong.
pub fn expand_list(list: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for part in split_outside_brackets(list, ',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("an empty host name in `{list}`"));
        }
        names.extend(expand(part)?);
        if names.len() > MAX_HOSTS {
            return Err(format!(
                "`{list}` stands for more than {MAX_HOSTS} hosts, the most one list may name"
            ));
        }
    }
    Ok(names)
}

/// `list` split on `sep` where it stands outside `[...]` (a range's or a
/// subscript's own `,` and `:` stay).
pub(crate) fn split_outside_brackets(list: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

/// A host (or range of hosts) and its port, as Ansible's `parse_address`
/// splits them in inventories: `[::1]:2222` and `web[1:3]:2222` have a
/// port; `fe80::1` and `web` do not.
pub(crate) fn address_and_port(text: &str) -> (&str, Option<u16>) {
    let port = |p: &str| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u16>().ok())
            .flatten()
    };
    if let Some((inside, after)) = text.strip_prefix('[').and_then(|t| t.rsplit_once("]:")) {
        if let Some(p) = port(after) {
            return (inside, Some(p));
        }
    }
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return (text, None);
    }
    if let Some((name, after)) = text.rsplit_once(':') {
        let colons_outside = split_outside_brackets(name, ':').len() > 1;
        if let (Some(p), false) = (port(after), colons_outside) {
            return (name, Some(p));
        }
    }
    (text, None)
}

/// The names one pattern stands for: `web[01:03]` is `web01 web02 web03`.
///
/// # Errors
/// A range that is not `[A:B]` or `[A:B:STEP]` of numbers or of letters,
/// or that runs backwards.
pub fn expand(name: &str) -> Result<Vec<String>, String> {
    if name.matches('[').count() > MAX_RANGES {
        return Err(format!(
            "`{name}` has more than {MAX_RANGES} ranges, the most one name may have"
        ));
    }
    let Some(open) = name.find('[') else {
        if name.contains(']') {
            return Err(format!("`{name}`: a `]` without its `[`"));
        }
        return Ok(vec![name.to_owned()]);
    };
    let close = name[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("`{name}`: a `[` without its `]`"))?;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let bad = |why: &str| format!("`{name}`: the range [{range}] {why}");
    let fields: Vec<&str> = range.split(':').collect();
    let (from, to, step) = match fields.as_slice() {
        [from, to] => (*from, *to, 1),
        [from, to, step] => (
            *from,
            *to,
            step.parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| bad("has a step that is not a positive number"))?,
        ),
        _ => return Err(bad("is not START:END or START:END:STEP")),
    };
    let items: Vec<String> = if let (Ok(a), Ok(b)) = (from.parse::<u64>(), to.parse::<u64>()) {
        if a > b {
            return Err(bad("runs backwards"));
        }
        if b - a >= MAX_HOSTS as u64 {
            return Err(bad(&format!("stands for more than {MAX_HOSTS} hosts")));
        }
        // `01` keeps two digits; `1` none.
        let width = if from.starts_with('0') && from.len() > 1 {
            from.len()
        } else {
            0
        };
        (a..=b)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let letter = |s: &str| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
                _ => None,
            }
        };
        match (letter(from), letter(to)) {
            (Some(a), Some(b)) if a <= b => (a..=b).step_by(step).map(String::from).collect(),
            (Some(_), Some(_)) => return Err(bad("runs backwards")),
            _ => return Err(bad("is neither numbers nor single letters")),
        }
    };
    let rests = expand(tail)?;
    if items.len().saturating_mul(rests.len()) > MAX_HOSTS {
        return Err(format!(
            "`{name}` stands for {} x {} hosts, more than the {MAX_HOSTS} one name may",
            items.len(),
            rests.len()
        ));
    }
    let mut names = Vec::with_capacity(items.len() * rests.len());
    for item in items {
        for rest in &rests {
            names.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases of ansible/ansible's test/units/parsing/utils/test_addresses.py.
    #[test]
    fn addresses_and_ports_split_as_ansible_splits_them() {
        for (text, host, port) in [
            ("192.0.2.3", "192.0.2.3", None),
            ("192.0.2.3:23", "192.0.2.3", Some(23)),
            ("::", "::", None),
            ("::1", "::1", None),
            ("[::1]:442", "::1", Some(442)),
            (
                "abcd:ef98:7654:3210:abcd:ef98:7654:3210",
                "abcd:ef98:7654:3210:abcd:ef98:7654:3210",
                None,
            ),
            (
                "[abcd:ef98:7654:3210:abcd:ef98:7654:3210]:42",
                "abcd:ef98:7654:3210:abcd:ef98:7654:3210",
                Some(42),
            ),
            ("some-host", "some-host", None),
            ("some-host:80", "some-host", Some(80)),
            ("some.host.com:492", "some.host.com", Some(492)),
            ("[some.host.com]:493", "some.host.com", Some(493)),
            ("foo[1:2]", "foo[1:2]", None),
            ("foo[1:2]:22", "foo[1:2]", Some(22)),
            ("[foo[1:2]]:22", "foo[1:2]", Some(22)),
            ("192.0.2.[3:10]:23", "192.0.2.[3:10]", Some(23)),
        ] {
            assert_eq!(address_and_port(text), (host, port), "{text}");
        }
    }

    #[test]
    fn lists_and_ranges_expand_in_order() {
        assert_eq!(expand_list("a, b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            expand_list("web[08:10].example,db1").unwrap(),
            ["web08.example", "web09.example", "web10.example", "db1"]
        );
        assert_eq!(expand("n[1:3]").unwrap(), ["n1", "n2", "n3"]);
        assert_eq!(expand("n[0:10:5]").unwrap(), ["n0", "n5", "n10"]);
        assert_eq!(expand("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(
            expand("r[1:2]c[1:2]").unwrap(),
            ["r1c1", "r1c2", "r2c1", "r2c2"]
        );
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        for (bad, says) in [
            ("web[3:1]", "runs backwards"),
            ("web[1-3]", "is not START:END"),
            ("web[1:3", "without its `]`"),
            ("web[a:9]", "neither numbers nor single letters"),
            ("web[1:9:0]", "step that is not a positive number"),
            ("a,,b", "an empty host name"),
            ("web[0:100000]", "more than 100000 hosts"),
            ("h[0:99999][0:99999]", "more than the 100000 one name may"),
            ("h[0:999]x[0:999]", "1000 x 1000 hosts"),
            ("a[0:60000],b[0:60000]", "the most one list may name"),
            (&"x[1:1]".repeat(9), "more than 8 ranges"),
        ] {
            let err = expand_list(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
