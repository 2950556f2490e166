//! YAML read into nodes that keep their lines (for errors), within bounds
//! (depth, and nodes made, aliases counted at what they copy), with merge
//! keys (`<<`) resolved. Parsed with yaml-rust2's event API.

use std::collections::HashMap;

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scalar::plain;

/// A YAML node and the line it starts on.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Scalar(String, bool, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(Node, Node)>, usize),
}

impl Node {
    pub(super) fn line(&self) -> usize {
        match self {
            Node::Scalar(_, _, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }

    pub(super) fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(s, true, _) if s.is_empty() || s == "~" || s == "null")
    }

    pub(super) fn to_json(&self) -> Value {
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

/// A map key as text: a plain scalar as the JSON of what it reads as
/// (`1` is "1", `yes` is "true", as `ansible-inventory` writes keys).
pub(super) fn key_text(node: &Node) -> String {
    match node {
        Node::Scalar(s, true, _) => match plain(s) {
            Value::String(s) => s,
            Value::Null => "null".into(),
            other => other.to_string(),
        },
        Node::Scalar(s, false, _) => s.clone(),
        other => other.to_json().to_string(),
    }
}

/// A map's pairs with its merge keys (`<<: *anchor`, `<<: [*a, *b]`)
/// resolved as PyYAML resolves them: the merged pairs first (of a list,
/// the first map winning), then the map's own, which win.
fn merged(pairs: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, String> {
    if !pairs.iter().any(|(k, _)| is_merge(k)) {
        return Ok(pairs);
    }
    let mut from_merges = Vec::new();
    let mut own = Vec::new();
    for (key, value) in pairs {
        if !is_merge(&key) {
            own.push((key, value));
            continue;
        }
        let maps = match value {
            Node::Map(pairs, _) => vec![pairs],
            Node::Seq(items, _) => items
                .into_iter()
                .map(|item| match item {
                    Node::Map(pairs, _) => Ok(pairs),
                    _ => Err("`<<` merges a map, or a list of maps".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("`<<` merges a map, or a list of maps".to_owned()),
        };
        for pairs in maps.into_iter().rev() {
            from_merges.extend(merged(pairs)?);
        }
    }
    from_merges.extend(own);
    Ok(from_merges)
}

/// Pairs with each key once, as PyYAML builds a mapping (and Ansible
/// warns of): the last value, at the first key's place.
fn deduplicated(pairs: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        match at.entry(key_text(&key)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()].1 = value,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// How a tag on a scalar makes it read: `!!str` and Ansible's `!unsafe`
/// as text (`Some(false)`), `!!int`, `!!float`, `!!bool` and `!!null` as
/// YAML reads a plain scalar (`Some(true)`), none as its style says
/// (`None`). `!vault` (Ansible Vault) and other tags are refused.
fn tagged(tag: Option<&yaml_rust2::parser::Tag>) -> Result<Option<bool>, String> {
    let Some(tag) = tag else {
        return Ok(None);
    };
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("tag:yaml.org,2002:", "str") | ("!", "unsafe") => Ok(Some(false)),
        ("tag:yaml.org,2002:", "int" | "float" | "bool" | "null") => Ok(Some(true)),
        ("!", "vault") => Err(
            "a `!vault` value: chopsticks does not decrypt Ansible Vault; give the value \
             another way (an environment variable read by the tool, a file on the host)"
                .into(),
        ),
        (handle, suffix) => Err(format!(
            "the tag {handle}{suffix} is not one chopsticks reads (!!str, !!int, !!float, \
             !!bool, !!null, !unsafe)"
        )),
    }
}

fn is_merge(key: &Node) -> bool {
    matches!(key, Node::Scalar(s, true, _) if s == "<<")
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
            Event::Scalar(value, style, anchor, tag) if self.count(1, line) => {
                let plain = match tagged(tag.as_ref()) {
                    Ok(Some(plain)) => plain,
                    Ok(None) => style == TScalarStyle::Plain,
                    Err(why) => return self.refuse(line, why),
                };
                self.push(Node::Scalar(value, plain, line), 1, anchor);
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
                    Some(Frame::Map(pairs, _, line, anchor, inside)) => match merged(pairs) {
                        Ok(pairs) => (Node::Map(deduplicated(pairs), line), inside + 1, anchor),
                        Err(why) => return self.refuse(line, why),
                    },
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

/// The first document of `text`, within the bounds: `Ok(None)` for an
/// empty file; `Err` with the line and why.
pub(super) fn parse(text: &str) -> Result<Option<Node>, (usize, String)> {
    let mut builder = Builder::default();
    let loaded = Parser::new_from_str(text).load(&mut builder, false);
    // A bound the builder met comes first: the parser may fail after it.
    if let Some(refused) = builder.refused {
        return Err(refused);
    }
    loaded.map_err(|e| {
        let why = match e.info() {
            // The scanner's own bound on [ { nesting (255).
            "recursion limit exceeded" => format!("the YAML nests deeper than {MAX_DEPTH} levels"),
            info => info.to_owned(),
        };
        (e.marker().line(), why)
    })?;
    Ok(builder.docs.into_iter().next())
}
