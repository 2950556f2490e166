//! Ansible's INI inventories, as Ansible reads them: hosts before any
//! section are ungrouped; `[group]` lists hosts (with ranges, `name:port`
//! and `key=value` variables read as literals); `[group:vars]` sets the
//! group's variables (as text); `[group:children]` names child groups.

use std::path::Path;

use serde_json::Value;

use super::{check_host, check_var, literal, Inventory, InventoryError};
use crate::hosts;

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let mut section = Section::Hosts("ungrouped".into());
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String| InventoryError::at(file, Some(line_no), message);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| err(format!("`{line}`: a section header ends with `]`")))?;
            section = match name.split_once(':') {
                None => Section::Hosts(name.to_owned()),
                Some((group, "vars")) => Section::Vars(group.to_owned()),
                Some((group, "children")) => Section::Children(group.to_owned()),
                Some((_, other)) => {
                    return Err(err(format!(
                        "`[{name}]`: unknown section kind `{other}` (Ansible knows :vars and \
                         :children)"
                    )))
                }
            };
            let group = match &section {
                Section::Hosts(g) | Section::Vars(g) | Section::Children(g) => g,
            };
            if !valid_group(group) {
                return Err(err(format!(
                    "`{group}` is not a group name: letters, digits and _ only"
                )));
            }
            inv.group_mut(group);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = split_words(line).map_err(&err)?;
                let (pattern, vars) = words.split_first().expect("a non-empty line has a word");
                let (pattern, port) = split_port(pattern);
                let names = hosts::expand(pattern).map_err(&err)?;
                let mut parsed = Vec::new();
                for word in vars {
                    let (k, v) = word.split_once('=').ok_or_else(|| {
                        err(format!(
                            "`{word}`: variables on a host's line are key=value"
                        ))
                    })?;
                    let value = literal(v);
                    check_var(k, &value).map_err(&err)?;
                    parsed.push((k.to_owned(), value));
                }
                for name in names {
                    check_host(&name).map_err(&err)?;
                    if group != "ungrouped" {
                        inv.add_to_group(group, &name);
                    }
                    let host = inv.host_mut(&name);
                    if let Some(port) = port {
                        host.vars.insert("ansible_port".into(), Value::from(port));
                    }
                    host.vars.extend(parsed.iter().cloned());
                }
            }
            Section::Vars(group) => {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| err(format!("`{line}`: a :vars line is key=value")))?;
                let value = v.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                let value = Value::String(value.to_owned());
                check_var(k.trim(), &value).map_err(&err)?;
                inv.group_mut(group).vars.insert(k.trim().to_owned(), value);
            }
            Section::Children(group) => {
                if !valid_group(line) {
                    return Err(err(format!("`{line}`: a :children line names one group")));
                }
                inv.add_child(group, line);
            }
        }
    }
    Ok(())
}

fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `host:2222` is a host and its port; a colon inside a range is not.
fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if let Some((name, port)) = pattern.rsplit_once(':') {
        if !port.contains(']') {
            if let Ok(port) = port.parse() {
                return (name, Some(port));
            }
        }
    }
    (pattern, None)
}

/// Words separated by blanks, with `'...'` and `"..."` keeping blanks (a
/// quoted value stays quoted, for [`literal`] to read).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, '#') if word.is_empty() => break,
            (None, c) => word.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("`{line}`: a {q} that is never closed"));
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
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
        let (s, vars) = inv.resolve("web02.example");
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(vars["http_port"], 8080);
        assert_eq!(vars["role"], "frontend");
        let (s, vars) = inv.resolve("web-special");
        assert_eq!(s.port, Some(2222));
        assert_eq!(
            (vars["motd"].as_str(), vars["canary"].as_bool()),
            (Some("hello there"), Some(true))
        );
        assert_eq!(inv.resolve("db1").0.sudo.as_deref(), Some("root"));
        assert_eq!(
            inv.resolve("loose.example").0.address.as_deref(),
            Some("10.0.0.9")
        );
    }

    #[test]
    fn what_cannot_be_read_names_file_and_line() {
        for (text, line, says) in [
            ("[web]\nweb1\n[web:hostvars]\n", 3, "unknown section kind"),
            ("[web]\nweb[3:1]\n", 2, "runs backwards"),
            ("[web]\nweb1 port\n", 2, "key=value"),
            ("[web:vars]\njust-a-word\n", 2, "key=value"),
            ("[web\n", 1, "ends with `]`"),
            ("[web]\nweb1 motd=\"open\n", 2, "never closed"),
        ] {
            let err = read(text, Path::new("inv.ini"), &mut Inventory::new()).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.to_string().starts_with(&format!("inv.ini:{line}: ")));
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }
}
