//! Inventories and patterns (`tests/ansible/inventories.toml`): the hosts
//! of each group, each host's variables with their types and its
//! connection settings, and the hosts of each pattern, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use chopsticks_cli::{Inventory, InventoryError, Settings};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{cases, driver, scratch, shown, Differences, Disagreements};

/// `tests/ansible/inventories.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cases {
    pub(crate) inventory: Vec<InventoryCase>,
    pub(crate) pattern: Vec<PatternCase>,
}

/// An inventory file, as both sides read it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InventoryCase {
    pub(crate) id: String,
    pub(crate) source: String,
    /// Its file name: `.yml`/`.yaml` is YAML, anything else INI (never
    /// `.toml`, which is our own format).
    pub(crate) file: String,
    pub(crate) text: String,
    /// More files beside it (`group_vars/web.yml`), by path in the case's
    /// directory.
    #[serde(default)]
    pub(crate) files: BTreeMap<String, String>,
    /// What both sides are given to read, when not `file` (a directory).
    pub(crate) read: Option<String>,
    /// Also run through `ansible-inventory`.
    #[serde(default)]
    pub(crate) cli: bool,
    /// What we do instead, on purpose: refuse it with an error that says
    /// this (where Ansible warns and reads on).
    pub(crate) ours: Option<OursPattern>,
    /// Why we differ (the README's kit section says it too).
    pub(crate) difference: Option<String>,
}

/// A pattern over one of the inventories.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternCase {
    pub(crate) id: String,
    pub(crate) source: String,
    /// The id of the inventory.
    pub(crate) inventory: String,
    /// `{limit}` stands for the path of a file holding `limit_file`.
    pub(crate) pattern: String,
    pub(crate) limit_file: Option<String>,
    /// Also run through `ansible -i FILE PATTERN --list-hosts`.
    #[serde(default)]
    pub(crate) cli: bool,
    /// What we do instead, on purpose: an error that says this.
    pub(crate) ours: Option<OursPattern>,
    /// Why we differ (the README's kit section says it too).
    pub(crate) difference: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OursPattern {
    pub(crate) error: String,
}

/// What Ansible makes of an inventory: driver.py's answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    /// Why it cannot read the inventory.
    pub(crate) error: Option<String>,
    /// Each group, its hosts (its own and its children's) in order, and
    /// whether that order is the inventory's (or Python's hash seed's).
    pub(crate) groups: Vec<(String, Vec<String>, bool)>,
    /// Each host, its variables and how it is reached, in order.
    pub(crate) hosts: Vec<(String, Map<String, Value>, Reach)>,
    /// What each pattern over it selects, by the pattern's id.
    pub(crate) patterns: BTreeMap<String, Selected>,
    /// What it said while reading.
    pub(crate) warnings: Vec<String>,
}

impl Answer {
    /// The first line of each warning: why the plugins could not read it.
    fn why(&self) -> String {
        let lines = self.warnings.iter().filter_map(|w| w.lines().next());
        lines.collect::<Vec<_>>().join("; ")
    }
}

/// How Ansible reaches a host: the ssh connection's host, remote_user and
/// port, and the become user when it becomes one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reach {
    address: Option<String>,
    user: Option<String>,
    port: Option<i64>,
    sudo: Option<String>,
}

/// What a pattern selects, in order; or why not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Selected {
    pub(crate) hosts: Option<Vec<String>>,
    pub(crate) error: Option<String>,
    pub(crate) warnings: Vec<String>,
}

impl fmt::Display for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, &self.hosts) {
            (Some(e), _) => write!(f, "error: {e}")?,
            (None, hosts) => write!(f, "{}", json!(hosts))?,
        }
        match self.warnings.as_slice() {
            [] => Ok(()),
            w => write!(f, " (warning: {})", w.join("; ")),
        }
    }
}

/// The cases, laid out in files, and what Ansible makes of them: asked
/// once for all the tests that need it.
pub(crate) struct Prepared {
    pub(crate) cases: Cases,
    /// Each inventory's file, by id.
    pub(crate) paths: BTreeMap<String, PathBuf>,
    /// Each pattern with `{limit}` replaced, by id.
    pub(crate) patterns: BTreeMap<String, String>,
    /// Ansible's answer for each inventory, by id.
    pub(crate) answers: BTreeMap<String, Answer>,
    /// The Ansible home of the driver and the commands.
    pub(crate) home: PathBuf,
}

impl Prepared {
    /// What Ansible selects for the pattern case `id`.
    pub(crate) fn selected(&self, case: &PatternCase) -> &Selected {
        &self.answers[&case.inventory].patterns[&case.id]
    }
}

pub(crate) fn prepared() -> &'static Prepared {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let cases: Cases = cases("inventories.toml");
        let dir = scratch("inventories");
        let mut paths = BTreeMap::new();
        for case in &cases.inventory {
            assert!(
                !case.file.ends_with(".toml"),
                "{}: .toml is our own format",
                case.id
            );
            let home = dir.join(&case.id);
            let files = std::iter::once((&case.file, &case.text)).chain(&case.files);
            for (name, text) in files {
                let file = home.join(name);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, text).unwrap();
            }
            let path = home.join(case.read.as_ref().unwrap_or(&case.file));
            let unique = paths.insert(case.id.clone(), path).is_none();
            assert!(unique, "{}: two inventories", case.id);
        }
        let mut patterns = BTreeMap::new();
        let limits = dir.join("limits");
        std::fs::create_dir_all(&limits).unwrap();
        for case in &cases.pattern {
            let mut pattern = case.pattern.clone();
            if let Some(text) = &case.limit_file {
                let path = limits.join(&case.id);
                std::fs::write(&path, text).unwrap();
                pattern = pattern.replace("{limit}", path.to_str().unwrap());
            }
            let known = paths.contains_key(&case.inventory);
            assert!(known, "{}: no inventory {}", case.id, case.inventory);
            let unique = patterns.insert(case.id.clone(), pattern).is_none();
            assert!(unique, "{}: two patterns", case.id);
        }
        let request: Vec<Value> = cases
            .inventory
            .iter()
            .map(|inv| {
                let mine: Vec<Value> = cases
                    .pattern
                    .iter()
                    .filter(|p| p.inventory == inv.id)
                    .map(|p| json!({"id": p.id, "pattern": patterns[&p.id]}))
                    .collect();
                json!({"id": inv.id, "path": paths[&inv.id], "patterns": mine})
            })
            .collect();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let answer = driver("inventory", &json!({ "cases": request }), &home);
        let answers: BTreeMap<String, Answer> =
            serde_json::from_value(answer).expect("the driver's inventory answer");
        for case in &cases.pattern {
            let groups = &answers[&case.inventory].groups;
            assert!(
                groups.iter().all(|(.., ordered)| *ordered),
                "{}: the hosts of {} come in an order Python's hash seed makes: patterns need \
                 an inventory whose groups nest at most one deep",
                case.id,
                case.inventory
            );
        }
        Prepared {
            cases,
            paths,
            patterns,
            answers,
            home,
        }
    })
}

#[test]
fn inventories_and_patterns_read_as_ansible_reads_them() {
    let prepared = prepared();
    let mut found = Disagreements::default();
    let mut loaded = BTreeMap::new();
    for case in &prepared.cases.inventory {
        let ours = Inventory::load(&prepared.paths[&case.id]);
        let answer = &prepared.answers[&case.id];
        let mut differ = found.case(&case.id, &case.source);
        match &case.ours {
            Some(OursPattern { error }) => {
                // Refused when read, or when a host is resolved to be reached.
                let refused = match &ours {
                    Err(e) => Some(e.to_string()),
                    Ok(inv) => inv
                        .hosts()
                        .find_map(|h| inv.resolve(&h.name).err())
                        .map(|e| e.to_string()),
                };
                if !refused.as_ref().is_some_and(|e| e.contains(error.as_str())) {
                    differ.add(
                        "reading the inventory and resolving its hosts, ours on purpose",
                        format_args!("{refused:?}"),
                        format_args!("an error saying {error:?} (the case's)"),
                    );
                }
                if let Some(e) = &answer.error {
                    differ.add(
                        "reading the inventory: Ansible reads it",
                        "(the case says so)",
                        format_args!("error: {e}"),
                    );
                }
            }
            None => compare_inventory(ours.as_ref(), answer, differ),
        }
        loaded.insert(case.id.as_str(), ours);
    }
    for case in &prepared.cases.pattern {
        let pattern = &prepared.patterns[&case.id];
        let ansible = prepared.selected(case);
        let mut differ = found.case(&case.id, &case.source);
        match &loaded[case.inventory.as_str()] {
            Ok(inventory) => compare_pattern(case, pattern, inventory, ansible, differ),
            Err(e) => differ.add(
                format_args!("pattern {pattern:?}: the inventory {}", case.inventory),
                format_args!("cannot read it: {e}"),
                ansible,
            ),
        }
    }
    let count = prepared.cases.inventory.len() + prepared.cases.pattern.len();
    found.check("inventory and pattern", count);
}

/// Reading it or not; the groups, each group's hosts in order (`all`'s are
/// every host); each host's variables and settings.
fn compare_inventory(
    ours: Result<&Inventory, &InventoryError>,
    ansible: &Answer,
    mut differ: Differences,
) {
    let theirs: Vec<&str> = ansible
        .hosts
        .iter()
        .map(|(name, ..)| name.as_str())
        .collect();
    let inventory = match (ours, &ansible.error) {
        (Err(_), Some(_)) => return, // both refuse it
        (Err(e), None) => {
            return differ.add(
                "reading the inventory",
                format_args!("error: {e}"),
                format_args!("reads it: hosts {theirs:?}"),
            );
        }
        (Ok(inventory), Some(e)) => {
            let mine: Vec<&str> = inventory.hosts().map(|h| h.name.as_str()).collect();
            return differ.add(
                "reading the inventory",
                format_args!("reads it: hosts {mine:?}"),
                format_args!("error: {e} (warnings: {})", ansible.why()),
            );
        }
        (Ok(inventory), None) => inventory,
    };
    let groups: BTreeSet<&str> = ansible
        .groups
        .iter()
        .map(|(name, ..)| name.as_str())
        .collect();
    let mine: BTreeSet<&str> = inventory.group_names().into_iter().collect();
    if mine != groups {
        differ.add(
            "the groups",
            format_args!("{mine:?}"),
            format_args!("{groups:?}"),
        );
    }
    for (name, hosts, ordered) in &ansible.groups {
        let mine = inventory.group_hosts(name);
        if *ordered && mine != *hosts {
            let what = format!("the hosts of group {name}, in order");
            differ.add(what, format_args!("{mine:?}"), format_args!("{hosts:?}"));
        }
        let (mine, theirs): (BTreeSet<&str>, BTreeSet<&str>) = (
            mine.into_iter().collect(),
            hosts.iter().map(String::as_str).collect(),
        );
        if !*ordered && mine != theirs {
            let what = format!("the hosts of group {name} (in an order Python's hash seed makes)");
            differ.add(what, format_args!("{mine:?}"), format_args!("{theirs:?}"));
        }
    }
    for (name, vars, reach) in &ansible.hosts {
        if inventory.host(name).is_some() {
            match inventory.resolve(name) {
                Ok((settings, resolved)) => {
                    compare_vars(name, &resolved, vars, &mut differ);
                    compare_settings(name, &settings, reach, &mut differ);
                }
                Err(e) => differ.add(
                    format_args!("{name}: how it is reached"),
                    format_args!("refused: {e}"),
                    format_args!("{vars:?}"),
                ),
            }
        }
    }
}

/// Each variable, with its JSON type: `80` is not `"80"`, `1000.0` not `1000`.
fn compare_vars(
    host: &str,
    ours: &Map<String, Value>,
    theirs: &Map<String, Value>,
    differ: &mut Differences,
) {
    let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for key in keys {
        let (mine, their) = (ours.get(key), theirs.get(key));
        if mine != their {
            differ.add(
                format_args!("{host}: variable {key}"),
                shown(mine),
                shown(their),
            );
        }
    }
}

/// Where ssh connects (the host's name unless said), as whom, on which
/// port, and the user it becomes through sudo.
fn compare_settings(host: &str, ours: &Settings, theirs: &Reach, differ: &mut Differences) {
    let address = ours.address.as_deref().unwrap_or(host);
    let pairs = [
        ("address", Some(address.to_owned()), theirs.address.clone()),
        ("user", ours.user.clone(), theirs.user.clone()),
        (
            "port",
            ours.port.map(|p| p.to_string()),
            theirs.port.map(|p| p.to_string()),
        ),
        ("become user (sudo)", ours.sudo.clone(), theirs.sudo.clone()),
    ];
    for (what, mine, their) in pairs {
        if mine != their {
            differ.add(
                format_args!("{host}: connection setting {what}"),
                format_args!("{mine:?}"),
                format_args!("{their:?}"),
            );
        }
    }
}

/// The same hosts in the same order, or both refuse it; where a case
/// says we differ on purpose, Ansible warns and we refuse.
fn compare_pattern(
    case: &PatternCase,
    pattern: &str,
    inventory: &Inventory,
    ansible: &Selected,
    mut differ: Differences,
) {
    let what = format!("pattern {pattern:?} over {}", case.inventory);
    // A pattern with `@FILE` is what Ansible takes only as a limit (the
    // driver runs `all --limit` for it): the kit's `-l`, in all's order.
    let ours = match pattern.split([',', ':']).any(|t| t.trim().starts_with('@')) {
        true => chopsticks_cli::pattern::limit(inventory, pattern),
        false => chopsticks_cli::pattern::select(inventory, pattern),
    };
    let mine = match &ours {
        Ok(hosts) => json!(hosts).to_string(),
        Err(e) => format!("error: {e}"),
    };
    if let Some(expected) = &case.ours {
        // The difference is still there: Ansible warns a term matches
        // nothing, or, for an empty pattern, selects every host.
        let still = match expected.error.contains("an empty pattern") {
            true => ansible.hosts.as_ref().is_some_and(|h| !h.is_empty()),
            false => ansible
                .warnings
                .iter()
                .any(|w| w.contains("Could not match supplied host pattern")),
        };
        if !still {
            differ.add(
                format_args!("{what}: the case says Ansible differs (warns, or takes all)"),
                &mine,
                ansible,
            );
        }
        if !ours.as_ref().is_err_and(|e| e.contains(&expected.error)) {
            differ.add(
                format_args!(
                    "{what}: ours on purpose, an error saying {:?}",
                    expected.error
                ),
                &mine,
                ansible,
            );
        }
        return;
    }
    let agree = match (&ours, &ansible.hosts) {
        (Err(_), None) => true,
        (Ok(hosts), Some(theirs)) => hosts == theirs,
        _ => false,
    };
    if !agree {
        differ.add(what, mine, ansible);
    }
}
