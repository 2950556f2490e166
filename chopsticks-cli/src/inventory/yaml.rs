//! Ansible's YAML inventories: a map of groups, each with `hosts` (names
//! or ranges, each with its variables), `vars` and `children` (groups of
//! the same shape). Scalars read as Ansible's YAML reads them (`yes` and
//! `no` are booleans too). Parsed with yaml-rust2's event API, so that
//! every node keeps its line for errors.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Inventory, InventoryError};
use crate::hosts;

/// A YAML node and the line it starts on.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String, bool, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(Node, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar(_, _, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s, true, _) if s.is_empty() || s == "~" || s == "null")
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Scalar(s, false, _) => Value::String(s.clone()),
            Node::Scalar(s, true, _) => plain(s),
            Node::Seq(items, _) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(pairs, _) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (key_text(k), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn key_text(node: &Node) -> String {
    match node {
        Node::Scalar(s, _, _) => s.clone(),
        other => other.to_json().to_string(),
    }
}

/// A plain scalar as YAML 1.1 (Ansible's) reads it.
fn plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" => Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" => Value::Bool(false),
        _ => {
            if let Ok(n) = s.parse::<i64>() {
                Value::from(n)
            } else if let Some(f) = s.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Value::from(f)
            } else {
                Value::String(s.to_owned())
            }
        }
    }
}

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(pairs, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, style, anchor, _) => {
                let node = Node::Scalar(value, style == TScalarStyle::Plain, line);
                self.push(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), line, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, line, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, line, anchor)) => self.push(Node::Seq(items, line), anchor),
                Some(Frame::Map(pairs, _, line, anchor)) => {
                    self.push(Node::Map(pairs, line), anchor)
                }
                None => {}
            },
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node::Scalar(
                    String::new(),
                    true,
                    line,
                ));
                self.push(node, 0);
            }
            _ => {}
        }
    }
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| InventoryError::at(file, Some(e.marker().line()), e.info().to_owned()))?;
    let Some(root) = builder.docs.into_iter().next() else {
        return Ok(());
    };
    let err = |node: &Node, message: String| InventoryError::at(file, Some(node.line()), message);
    let Node::Map(groups, _) = &root else {
        return Err(err(
            &root,
            "an Ansible YAML inventory is a map of groups (all: ...)".into(),
        ));
    };
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
                if value.is_null() {
                    continue;
                }
                let Node::Map(hosts, _) = value else {
                    return Err(err(
                        value,
                        format!("{name}.hosts is a map of host names to their variables"),
                    ));
                };
                for (host, vars) in hosts {
                    let pattern = key_text(host);
                    let names = hosts::expand(&pattern).map_err(|e| err(host, e))?;
                    let vars = vars_of(vars, &format!("the host {pattern}"), file)?;
                    for h in names {
                        if name != "all" && name != "ungrouped" {
                            inv.add_to_group(name, &h);
                        }
                        inv.host_mut(&h).vars.extend(vars.clone());
                    }
                }
            }
            "vars" => {
                let vars = vars_of(value, &format!("{name}.vars"), file)?;
                inv.group_mut(name).vars.extend(vars);
            }
            "children" => {
                if value.is_null() {
                    continue;
                }
                let Node::Map(children, _) = value else {
                    return Err(err(value, format!("{name}.children is a map of groups")));
                };
                for (child, child_body) in children {
                    let child_name = key_text(child);
                    if name != "all" {
                        inv.add_child(name, &child_name);
                    }
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
        let (s, vars) = inv.resolve("canary.example");
        assert_eq!(
            (s.address.as_deref(), s.port),
            (Some("10.0.0.7"), Some(2222))
        );
        assert_eq!(vars["canary"], true);
        assert_eq!(vars["http_port"], 8080);
        assert_eq!(vars["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(vars["ntp"], "time.example");
        assert_eq!(
            inv.resolve("web1.example").0.user.as_deref(),
            Some("deploy")
        );
        assert_eq!(inv.resolve("db1").0.sudo.as_deref(), Some("postgres"));
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
        ] {
            let err = read(text, Path::new("inv.yml"), &mut Inventory::new()).unwrap_err();
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }
}
