//! Ansible's INI inventories, read as ansible-core's `ini` plugin reads
//! them: hosts before any section are in `ungrouped`; `[group]` lists
//! hosts (a line is split as a shell would, `#` starting a comment; ranges
//! and `name:port` expand; `key=value` values are Python literals:
//! `80`, `'text'`, `[1, 2]`, `True`, else text); `[group:vars]` sets the
//! group's variables (Python literals too, read whole: a `# comment` after
//! a literal goes, after text it stays); `[group:children]` names child
//! groups, which must be declared somewhere in the file. A header may end
//! with a `# comment`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::python::{literal_eval, shlex_split};
use super::{check_host, check_var, Inventory, InventoryError};
use crate::hosts;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// A group named before it is declared: where, how, and by which parents.
struct Pending {
    line: usize,
    state: State,
    parents: Vec<String>,
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let mut group = "ungrouped".to_owned();
    let mut state = State::Hosts;
    // Groups declared so far (by any header), and those named before that.
    // (Those an earlier source made count: Ansible reads sources into one.)
    let mut declared: HashSet<String> = ["all", "ungrouped"].map(str::to_owned).into();
    declared.extend(inv.group_names().into_iter().map(str::to_owned));
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut pending_order: Vec<String> = Vec::new();
    for (i, raw) in python_lines(text).enumerate() {
        let line_no = i + 1;
        let err = |message: String| InventoryError::at(file, Some(line_no), message);
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((name, kind)) = section(line) {
            state = match kind {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(err(format!(
                        "`{line}`: unknown section kind `{other}` (Ansible knows hosts, vars \
                         and children)"
                    )))
                }
            };
            group = name.to_owned();
            if !declared.contains(&group) {
                if state == State::Vars && !pending.contains_key(&group) {
                    pending_order.push(group.clone());
                    pending.insert(
                        group.clone(),
                        Pending {
                            line: line_no,
                            state,
                            parents: Vec::new(),
                        },
                    );
                }
                declared.insert(group.clone());
            }
            inv.group_mut(&group);
            if state != State::Vars {
                declare(inv, &group, &mut pending);
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(err(format!(
                "`{line}`: not a section header: a group name has no blanks, `:` or `]`, and \
                 the kind after `:` is hosts, vars or children"
            )));
        }
        match state {
            State::Hosts => host_line(line, &group, inv).map_err(err)?,
            State::Vars => {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| err(format!("`{line}`: a :vars line is key=value")))?;
                let (k, value) = (k.trim(), value(v.trim()));
                check_var(k, &value).map_err(&err)?;
                inv.group_mut(&group).vars.insert(k.to_owned(), value);
            }
            State::Children => {
                let child = group_name(line)
                    .ok_or_else(|| err(format!("`{line}`: a :children line names one group")))?;
                if declared.contains(child) {
                    inv.add_child(&group, child);
                } else if let Some(p) = pending.get_mut(child) {
                    p.parents.push(group.clone());
                } else {
                    pending_order.push(child.to_owned());
                    pending.insert(
                        child.to_owned(),
                        Pending {
                            line: line_no,
                            state,
                            parents: vec![group.clone()],
                        },
                    );
                }
            }
        }
    }
    // As Ansible: a child group never declared, or vars of one, is an error.
    for name in pending_order {
        let Some(p) = pending.get(&name) else {
            continue;
        };
        let message = match p.state {
            State::Vars => format!("[{name}:vars] is for a group the file never declares"),
            _ => format!(
                "[{}:children] names the group {name}, which the file never declares \
                 (declare it with [{name}], even empty)",
                p.parents.last().map_or("", String::as_str)
            ),
        };
        return Err(InventoryError::at(file, Some(p.line), message));
    }
    Ok(())
}

/// `text`'s lines as Python's `str.splitlines` cuts them (as Ansible
/// reads an INI file): at `\n`, `\r\n`, a lone `\r`, and the other line
/// and paragraph separators.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        let Some(at) = t.find([
            '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
        ]) else {
            rest = None;
            return (!t.is_empty()).then_some(t);
        };
        let width = match t[at..].starts_with("\r\n") {
            true => 2,
            false => t[at..].chars().next().map_or(1, char::len_utf8),
        };
        rest = Some(&t[at + width..]).filter(|r| !r.is_empty());
        Some(&t[..at])
    })
}

/// `group` is declared: the parents that named it before take it as a
/// child (and, in turn, their parents them).
fn declare(inv: &mut Inventory, group: &str, pending: &mut HashMap<String, Pending>) {
    let mut todo = vec![group.to_owned()];
    while let Some(g) = todo.pop() {
        let Some(p) = pending.remove(&g) else {
            continue;
        };
        if p.state != State::Children {
            continue;
        }
        for parent in p.parents {
            inv.add_child(&parent, &g);
            if pending
                .get(&parent)
                .is_some_and(|pp| pp.state == State::Children)
            {
                todo.push(parent);
            }
        }
    }
}

/// `[name]` or `[name:kind]`, then blanks and an optional `# comment`.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let (inside, after) = (&rest[..close], rest[close + 1..].trim_start());
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, kind) = match inside.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inside, None),
    };
    let word = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_');
    (is_group_name(name) && kind.is_none_or(word)).then_some((name, kind))
}

/// A child group's line: its name, then blanks and an optional comment.
fn group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '#')
        .unwrap_or(line.len());
    let (name, after) = line.split_at(end);
    let after = after.trim_start();
    (is_group_name(name) && (after.is_empty() || after.starts_with('#'))).then_some(name)
}

/// What Ansible takes for a group name here: no blanks, `:` or `]`.
fn is_group_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == ':' || c == ']')
}

/// A host line: its hosts, in `group`, with their port and variables.
fn host_line(line: &str, group: &str, inv: &mut Inventory) -> Result<(), String> {
    let words = shlex_split(line).map_err(|e| format!("`{line}`: {e}"))?;
    let Some((pattern, vars)) = words.split_first() else {
        return Ok(());
    };
    let (range, port) = hosts::address_and_port(pattern);
    if pattern.trim_end().ends_with(':') && port.is_none() {
        return Err(format!(
            "`{pattern}`: a host ending in `:` (the `:` is for its port)"
        ));
    }
    let names = inv.expand(range)?;
    if names.iter().any(|n| n.trim() == "---") {
        return Err("`---` is not a host: is this file YAML (give it a .yml name)?".into());
    }
    let mut parsed = Vec::new();
    for word in vars {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}`: variables on a host's line are key=value"))?;
        let value = value(v);
        check_var(k, &value)?;
        parsed.push((k.to_owned(), value));
    }
    for name in names {
        check_host(&name)?;
        let host = inv.add_host(group, &name, port);
        host.vars.extend(parsed.iter().cloned());
    }
    Ok(())
}

/// A value as Ansible reads one: a Python literal, else the text.
fn value(text: &str) -> Value {
    literal_eval(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# an Ansible inventory
loose.example ansible_host=10.0.0.9

[web]
web[01:03].example ansible_user=deploy http_port=8080
web-special:2222 motd=\"hello there\" canary=True

[db]
db1 ansible_become=true

[web:vars]
role=frontend

[prod:children]
web
db
";

    #[test]
    fn an_ansible_ini_inventory_reads_as_ansible_reads_it() {
        let file = Path::new("hosts");
        let mut inv = Inventory::new();
        read(SAMPLE, file, &mut inv).unwrap();
        assert_eq!(
            inv.group_hosts("web"),
            [
                "web01.example",
                "web02.example",
                "web03.example",
                "web-special"
            ]
        );
        assert_eq!(inv.group_hosts("prod").len(), 5);
        assert_eq!(inv.group_hosts("ungrouped"), ["loose.example"]);
        let (s, vars) = inv.resolve("web02.example").unwrap();
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(vars["http_port"], 8080);
        assert_eq!(vars["role"], "frontend");
        let (s, vars) = inv.resolve("web-special").unwrap();
        assert_eq!(s.port, Some(2222));
        assert_eq!(
            (vars["motd"].as_str(), vars["canary"].as_bool()),
            (Some("hello there"), Some(true))
        );
        assert_eq!(inv.resolve("db1").unwrap().0.sudo.as_deref(), Some("root"));
        assert_eq!(
            inv.resolve("loose.example").unwrap().0.address.as_deref(),
            Some("10.0.0.9")
        );
    }

    #[test]
    fn an_inventory_holds_at_most_max_hosts_hosts() {
        let text = "[a]\na[0:59999]\n[b]\nb[0:59999]\n";
        // One more range than the bound allows is refused as it is read ...
        let path = std::env::temp_dir().join(format!("chopsticks-big-{}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let err = Inventory::new().read_source(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(err.message.contains("more than 100000 hosts"), "{err}");
        // ... and a later one is not even expanded.
        let mut inv = Inventory::new();
        let err = read(&format!("{text}[c]\nc[0:9]\n"), Path::new("big"), &mut inv).unwrap_err();
        assert!(err.message.contains("more than 100000 hosts"), "{err}");
    }

    #[test]
    fn lines_are_cut_as_pythons_splitlines_cuts_them() {
        let cut: Vec<&str> = python_lines("a\r\nb\rc\u{2028}d\n\ne\n").collect();
        assert_eq!(cut, ["a", "b", "c", "d", "", "e"]);
        assert_eq!(python_lines("").count(), 0);
        assert_eq!(python_lines("x").collect::<Vec<_>>(), ["x"]);
    }

    /// Cases of ansible-core's ini plugin: comments after headers, Python
    /// literals in both places, IPv6 hosts, groups declared after use.
    #[test]
    fn values_headers_and_addresses_as_the_ini_plugin_reads_them() {
        let text = "\
[web] # the web tier
2001:db8::1
[2001:db8::2]:2222 quoted_num=\"80\" flag=false list=\"[1, 2]\" mixed=a'b'c
[web:vars] ; not a comment here, but a value
[web:children] # comment
edge  # comment
[edge]
e1
[web:vars]
number=42
color=blue # kept
port=8080 # dropped
name='single'
";
        let mut inv = Inventory::new();
        read(text, Path::new("hosts"), &mut inv).unwrap_err();
        let text = text.replace("[web:vars] ; not a comment here, but a value\n", "");
        read(&text, Path::new("hosts"), &mut inv).unwrap();
        assert_eq!(inv.group_hosts("web"), ["2001:db8::1", "2001:db8::2", "e1"]);
        let (s, vars) = inv.resolve("2001:db8::2").unwrap();
        assert_eq!(s.port, Some(2222));
        assert_eq!(vars["quoted_num"], 80);
        assert_eq!(vars["flag"], "false");
        assert_eq!(vars["list"], serde_json::json!([1, 2]));
        assert_eq!(vars["mixed"], "abc");
        assert_eq!(vars["number"], 42);
        assert_eq!(vars["color"], "blue # kept");
        assert_eq!(vars["port"], 8080);
        assert_eq!(vars["name"], "single");
    }

    #[test]
    fn what_cannot_be_read_names_file_and_line() {
        for (text, line, says) in [
            ("[web]\nweb1\n[web:hostvars]\n", 3, "unknown section kind"),
            ("[web]\nweb[3:1]\n", 2, "runs backwards"),
            ("[web]\nweb1 port\n", 2, "key=value"),
            ("[web:vars]\njust-a-word\n", 2, "key=value"),
            ("[web\n", 1, "a `[` without its `]`"),
            ("[web]\nweb1 motd=\"open\n", 2, "No closing quotation"),
            ("[web server]\n", 1, "not a section header"),
            ("[web]\nweb1:\n", 2, "a host ending in `:`"),
            ("---\nall:\n", 1, "is this file YAML"),
            (
                "[usa:children]\nsoutheast\nnortheast\n[southeast]\n",
                3,
                "never declares",
            ),
            ("[web:vars]\nx=1\n", 1, "[web:vars] is for a group"),
        ] {
            let err = read(text, Path::new("inv.ini"), &mut Inventory::new()).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.to_string().starts_with(&format!("inv.ini:{line}: ")));
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }
}
