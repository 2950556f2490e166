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

use super::{check_host, check_vars, Inventory, InventoryError};
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

/// How deep YAML may nest (maps and lists within each other).
pub const MAX_DEPTH: usize = 128;

/// The most nodes a YAML inventory may make, aliases counted at what they
/// copy (a few anchors aliased in each other would otherwise grow
/// exponentially: the "billion laughs").
pub const MAX_NODES: usize = 2_000_000;

/// A map or list being read: its items, line, anchor, and the nodes in it.
enum Frame {
    Seq(Vec<Node>, usize, usize, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize, usize, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// Each anchor's node and how many nodes it holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// The nodes made so far.
    nodes: usize,
    /// Why reading stopped (a bound), and where.
    refused: Option<(usize, String)>,
}

impl Builder {
    /// Adds `node` (of `size` nodes) to what is being read.
    fn push(&mut self, node: Node, size: usize, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _, inside)) => {
                items.push(node);
                *inside += size;
            }
            Some(Frame::Map(pairs, key, _, _, inside)) => {
                *inside += size;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => pairs.push((k, node)),
                }
            }
        }
    }

    /// Counts `size` more nodes; false (and reading stops) past the bound.
    fn count(&mut self, size: usize, line: usize) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.refuse(
                line,
                format!("the YAML makes more than {MAX_NODES} nodes (aliases counted at what they copy)"),
            );
            return false;
        }
        true
    }

    fn refuse(&mut self, line: usize, why: String) {
        if self.refused.is_none() {
            self.refused = Some((line, why));
        }
        self.stack.clear();
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.refused.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Scalar(value, style, anchor, _) if self.count(1, line) => {
                let node = Node::Scalar(value, style == TScalarStyle::Plain, line);
                self.push(node, 1, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.refuse(
                    line,
                    format!("the YAML nests deeper than {MAX_DEPTH} levels"),
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), line, anchor, 0))
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(Vec::new(), None, line, anchor, 0))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, size, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, line, anchor, inside)) => {
                        (Node::Seq(items, line), inside + 1, anchor)
                    }
                    Some(Frame::Map(pairs, _, line, anchor, inside)) => {
                        (Node::Map(pairs, line), inside + 1, anchor)
                    }
                    None => return,
                };
                if self.count(1, line) {
                    self.push(node, size, anchor);
                }
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or((Node::Scalar(String::new(), true, line), 1));
                if self.count(size, line) {
                    self.push(node, size, 0);
                }
            }
            _ => {}
        }
    }
}

pub(super) fn read(text: &str, file: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    let mut builder = Builder::default();
    let loaded = Parser::new_from_str(text).load(&mut builder, false);
    // A bound the builder met comes first: the parser may fail after it.
    if let Some((line, why)) = builder.refused {
        return Err(InventoryError::at(file, Some(line), why));
    }
    loaded.map_err(|e| {
        let why = match e.info() {
            // The scanner's own bound on [ { nesting (255).
            "recursion limit exceeded" => format!("the YAML nests deeper than {MAX_DEPTH} levels"),
            info => info.to_owned(),
        };
        InventoryError::at(file, Some(e.marker().line()), why)
    })?;
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
                    check_vars(&vars).map_err(|e| err(host, e))?;
                    for h in names {
                        check_host(&h).map_err(|e| err(host, e))?;
                        if name != "all" && name != "ungrouped" {
                            inv.add_to_group(name, &h);
                        }
                        inv.host_mut(&h).vars.extend(vars.clone());
                    }
                }
            }
            "vars" => {
                let vars = vars_of(value, &format!("{name}.vars"), file)?;
                check_vars(&vars).map_err(|e| err(value, e))?;
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

    fn read_text(text: &str) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::new();
        read(text, Path::new("hosts.yml"), &mut inv).map(|()| inv)
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
        assert_eq!(inv.resolve("mail.example.com").1["relay"], true);
        assert!(!inv.resolve("foo.example.com").1.contains_key("relay"));
    }
}
