//! Ansible's YAML inventories: a map of groups, each with `hosts` (names
//! or ranges, each with its variables), `vars` and `children` (groups of
//! the same shape). Scalars read as Ansible's YAML reads them (YAML 1.1:
//! `yes` is a boolean, `0777` octal), merge keys (`<<`) too; every node
//! keeps its line for errors.

mod node;
mod scalar;

use std::path::Path;

use serde_json::{Map, Value};

use super::{check_host, check_vars, Inventory, InventoryError};
use crate::hosts;
use node::{key_text, Node};
use scalar::plain;

/// Whether `text` is YAML whose document is a map (a YAML inventory, not
/// an INI one).
pub(super) fn is_map(text: &str) -> bool {
    matches!(node::parse(text), Ok(Some(Node::Map(..))))
}

/// Reads a variables file (`group_vars/web.yml`): a map of variables, or
/// nothing.
pub(super) fn read_vars(
    text: &str,
    file: &Path,
    vars: &mut Map<String, Value>,
) -> Result<(), InventoryError> {
    let root =
        node::parse(text).map_err(|(line, why)| InventoryError::at(file, Some(line), why))?;
    match root {
        None => Ok(()),
        Some(root) => {
            vars.extend(vars_of(&root, "a variables file", file)?);
            Ok(())
        }
    }
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let root =
        node::parse(text).map_err(|(line, why)| InventoryError::at(file, Some(line), why))?;
    let Some(root) = root else {
        return Ok(());
    };
    let err = |node: &Node, message: String| InventoryError::at(file, Some(node.line()), message);
    let Node::Map(groups, _) = &root else {
        return Err(err(
            &root,
            "an Ansible YAML inventory is a map of groups (all: ...)".into(),
        ));
    };
    if let Some((_, Node::Scalar(plugin, _, _))) =
        groups.iter().find(|(k, _)| key_text(k) == "plugin")
    {
        return Err(err(
            &root,
            format!(
                "`plugin: {plugin}` configures an Ansible inventory plugin, which chopsticks \
                 does not run: write its inventory out with `ansible-inventory -i FILE \
                 --list > inventory.json` and give that file"
            ),
        ));
    }
    for (name, body) in groups {
        group(inv, &key_text(name), body, file, 0)?;
    }
    Ok(())
}

fn group(
    inv: &mut Inventory,
    name: &str,
    body: &Node,
    file: &Path,
    depth: usize,
) -> Result<(), InventoryError> {
    let err = |node: &Node, message: String| InventoryError::at(file, Some(node.line()), message);
    if depth > 64 {
        return Err(err(body, format!("groups nest deeper than 64 at {name}")));
    }
    inv.group_mut(name);
    if body.is_null() {
        return Ok(());
    }
    let Node::Map(pairs, _) = body else {
        return Err(err(
            body,
            format!("the group {name} is a map of hosts, vars and children"),
        ));
    };
    for (key, value) in pairs {
        let key_name = key_text(key);
        match key_name.as_str() {
            "hosts" => {
                let hosts = section(value).ok_or_else(|| {
                    err(
                        value,
                        format!("{name}.hosts is a map of host names to their variables"),
                    )
                })?;
                for (host, vars) in hosts.iter() {
                    if let Node::Scalar(text, true, _) = host {
                        if !plain(text).is_string() {
                            return Err(err(
                                host,
                                format!(
                                    "the host {text} reads as a number or a boolean: quote it \
                                     (\"{text}\") to make it a name"
                                ),
                            ));
                        }
                    }
                    let pattern = key_text(host);
                    let (range, port) = hosts::address_and_port(&pattern);
                    let names = inv.expand(range).map_err(|e| err(host, e))?;
                    let vars = vars_of(vars, &format!("the host {pattern}"), file)?;
                    check_vars(&vars).map_err(|e| err(host, e))?;
                    for h in names {
                        check_host(&h).map_err(|e| err(host, e))?;
                        let entry = inv.add_host(name, &h, port);
                        entry.vars.extend(vars.clone());
                    }
                }
            }
            "vars" => {
                let vars = match section(value) {
                    Some(pairs) if !matches!(value, Node::Map(..)) => pairs
                        .iter()
                        .map(|(k, v)| (key_text(k), v.to_json()))
                        .collect(),
                    _ => vars_of(value, &format!("{name}.vars"), file)?,
                };
                check_vars(&vars).map_err(|e| err(value, e))?;
                inv.group_mut(name).vars.extend(vars);
            }
            "children" => {
                let children = section(value)
                    .ok_or_else(|| err(value, format!("{name}.children is a map of groups")))?;
                for (child, child_body) in children.iter() {
                    let child_name = key_text(child);
                    inv.add_child(name, &child_name);
                    group(inv, &child_name, child_body, file, depth + 1)?;
                }
            }
            other => {
                return Err(err(
                    key,
                    format!(
                        "the group {name} has `{other}`: a group has hosts, vars and children \
                         (a host goes under hosts:)"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// A group's `hosts`, `vars` or `children` as pairs: a map's, none for
/// null, and one name (with nothing) for a string, as Ansible allows
/// (`hosts: web1`).
fn section(node: &Node) -> Option<std::borrow::Cow<'_, [(Node, Node)]>> {
    match node {
        Node::Map(pairs, _) => Some(std::borrow::Cow::Borrowed(pairs)),
        _ if node.is_null() => Some(std::borrow::Cow::Owned(Vec::new())),
        Node::Scalar(text, style_plain, line) if !style_plain || plain(text).is_string() => {
            let null = Node::Scalar(String::new(), true, *line);
            Some(std::borrow::Cow::Owned(vec![(node.clone(), null)]))
        }
        _ => None,
    }
}

fn vars_of(node: &Node, what: &str, file: &Path) -> Result<Map<String, Value>, InventoryError> {
    match node.to_json() {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map),
        _ => Err(InventoryError::at(
            file,
            Some(node.line()),
            format!("the variables of {what} are a map (key: value)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
all:
  vars:
    ntp: time.example
  hosts:
    loose.example:
  children:
    web:
      hosts:
        web[1:2].example:
          ansible_user: deploy
        canary.example:
          ansible_host: 10.0.0.7
          ansible_port: 2222
          canary: yes
      vars:
        http_port: 8080
        tags: [a, b]
    prod:
      children:
        web:
        db:
          hosts:
            db1:
              ansible_become: true
              ansible_become_user: postgres
";

    #[test]
    fn an_ansible_yaml_inventory_reads_as_ansible_reads_it() {
        let mut inv = Inventory::new();
        read(SAMPLE, Path::new("inv.yml"), &mut inv).unwrap();
        assert_eq!(
            inv.group_hosts("web"),
            ["web1.example", "web2.example", "canary.example"]
        );
        assert_eq!(inv.group_hosts("prod").len(), 4);
        assert_eq!(inv.group_hosts("ungrouped"), ["loose.example"]);
        let (s, vars) = inv.resolve("canary.example").unwrap();
        assert_eq!(
            (s.address.as_deref(), s.port),
            (Some("10.0.0.7"), Some(2222))
        );
        assert_eq!(vars["canary"], true);
        assert_eq!(vars["http_port"], 8080);
        assert_eq!(vars["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(vars["ntp"], "time.example");
        assert_eq!(
            inv.resolve("web1.example").unwrap().0.user.as_deref(),
            Some("deploy")
        );
        assert_eq!(
            inv.resolve("db1").unwrap().0.sudo.as_deref(),
            Some("postgres")
        );
    }

    #[test]
    fn what_cannot_be_read_names_file_and_line() {
        for (text, line, says) in [
            ("all:\n  hosts:\n    - web1\n", 3, "a map of host names"),
            (
                "all:\n  children:\n    web:\n      host:\n        w1:\n",
                4,
                "has `host`",
            ),
            ("web:\n  hosts:\n    w[2:1]:\n", 3, "runs backwards"),
            ("all:\n  hosts: {\n", 3, ""),
            ("- a\n- b\n", 1, "a map of groups"),
            ("web:\n  hosts:\n    w1: 5\n", 3, "are a map"),
            (
                "plugin: amazon.aws.aws_ec2\nregions: [x]\n",
                1,
                "ansible-inventory -i FILE --list",
            ),
        ] {
            let err = read(text, Path::new("inv.yml"), &mut Inventory::new()).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }

    fn read_text(text: &str) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::new();
        read(text, Path::new("hosts.yml"), &mut inv).map(|()| inv)
    }

    /// Merge keys, `host:port` keys, a section given as one name, and a
    /// host name that reads as a number (Ansible refuses it too).
    #[test]
    fn merge_keys_ports_and_short_forms_read_as_ansible_reads_them() {
        let text = "\
all:
  vars:
    base: &base {a: 1, b: 2}
    other: &other {b: 3, c: 4}
    merged:
      <<: [*base, *other]
      c: 5
  children:
    web:
      hosts:
        web1:2222:
        '[2001:db8::1]:2201':
    solo:
      hosts: lonely
";
        let inv = read_text(text).unwrap();
        let (settings, vars) = inv.resolve("web1").unwrap();
        assert_eq!(settings.port, Some(2222));
        assert_eq!(vars["merged"], serde_json::json!({"a": 1, "b": 2, "c": 5}));
        assert_eq!(inv.resolve("2001:db8::1").unwrap().0.port, Some(2201));
        assert_eq!(inv.group_hosts("solo"), ["lonely"]);
        // Tags, and a key given twice (the last value, at the first place).
        let tagged =
            "all:\n  vars:\n    a: !!str 0777\n    b: !!str yes\n    c: !!int \"12\"\n    \
                      d: !unsafe '{{ x }}'\n    a: !!str again\n";
        let (_, vars) = read_text(tagged).unwrap().resolve("localhost").unwrap();
        assert_eq!(
            (&vars["a"], &vars["b"], &vars["c"], &vars["d"]),
            (
                &"again".into(),
                &"yes".into(),
                &12.into(),
                &"{{ x }}".into()
            )
        );
        let twice = "web:\n  hosts:\n    a:\nweb:\n  hosts:\n    b:\n";
        assert_eq!(read_text(twice).unwrap().group_hosts("web"), ["b"]);
        let err =
            read_text("all:\n  vars:\n    p: !vault |\n      $ANSIBLE_VAULT;1.1\n").unwrap_err();
        assert!(
            err.to_string().contains("does not decrypt Ansible Vault"),
            "{err}"
        );
        let err = read_text("all:\n  hosts:\n    1234:\n").unwrap_err();
        assert!(err.to_string().contains("quote it"), "{err}");
        let err = read_text("all:\n  vars:\n    x: {<<: 5}\n").unwrap_err();
        assert!(err.to_string().contains("`<<` merges a map"), "{err}");
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused_with_their_bound() {
        let deep = format!(
            "all:\n  vars:\n    x: {}1{}\n",
            "[".repeat(500),
            "]".repeat(500)
        );
        let err = read_text(&deep).unwrap_err().to_string();
        assert!(err.contains("deeper than 128 levels"), "{err}");
        let mut block = String::from("all:\n  vars:\n");
        for level in 0..200 {
            block.push_str(&format!("{}k{level}:\n", "  ".repeat(level + 2)));
        }
        let err = read_text(&block).unwrap_err().to_string();
        assert!(err.contains("deeper than 128 levels"), "{err}");
        // Each anchor aliases the one before ten times: 10^9 nodes.
        let mut bomb = String::from("all:\n  vars:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = read_text(&bomb).unwrap_err().to_string();
        assert!(err.contains("more than 2000000 nodes"), "{err}");
    }

    /// The inventory guide's first YAML example names `ungrouped` itself.
    #[test]
    fn an_explicit_ungrouped_group_is_read() {
        let inv = read_text(
            "ungrouped:\n  hosts:\n    mail.example.com:\n  vars:\n    relay: yes\n\
             webservers:\n  hosts:\n    foo.example.com:\n",
        )
        .unwrap();
        assert_eq!(inv.group_hosts("ungrouped"), ["mail.example.com"]);
        assert_eq!(inv.resolve("mail.example.com").unwrap().1["relay"], true);
        assert!(!inv
            .resolve("foo.example.com")
            .unwrap()
            .1
            .contains_key("relay"));
    }
}
