//! The kit's inventories and patterns, `ops::line`, `ops::block` and
//! `ops::template`,
//! against ansible-core itself: the cases of `tests/ansible/*.toml`, each
//! naming where in ansible/ansible (or its docs) it comes from, go to
//! both, and every disagreement is listed in one failure.
//!
//! Ansible's side is `tests/ansible/driver.py`, run once per kind of case
//! by the ansible-core that `tests/setup.sh` installs in a virtual
//! environment of its own (`target/testhosts/ansible`); the cases marked
//! `cli = true` also go through the `ansible-inventory` and `ansible`
//! commands, to show that the driver says what they say. No test host is
//! needed.
//!
//! Where we differ on purpose (a pattern term that matches nothing is an
//! error, not a warning; CRLF files keep their CRLF), a case says so with
//! `difference` and what we do with `ours`, and the test holds us to it.

mod cli;
mod files;
mod inventory;
mod templates;

use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The ansible-core release the cases are checked against (`tests/setup.sh`).
const ANSIBLE: &str = "2.19.14";

/// The virtual environment's `bin`, or a failure that says how to get it.
fn venv() -> PathBuf {
    let state = std::env::var_os("CHOPSTICKS_TESTHOSTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts"));
    let bin = state.join("ansible/bin");
    assert!(
        bin.join("ansible-inventory").exists() && bin.join("python").exists(),
        "no ansible-core at {}: run tests/setup.sh (it installs ansible-core {ANSIBLE} into \
         target/testhosts/ansible)",
        bin.display()
    );
    bin
}

/// `tests/ansible/NAME`.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ansible")
        .join(name)
}

/// The cases of `tests/ansible/NAME`.
fn cases<T: DeserializeOwned>(name: &str) -> T {
    let path = data(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A command of the virtual environment, quiet and free of the user's
/// Ansible configuration: the driver and the CLI run with the same.
fn ansible_command(program: &str, home: &Path) -> Command {
    let mut command = Command::new(venv().join(program));
    let config = home.join("ansible.cfg");
    std::fs::write(&config, "").unwrap();
    command
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .env("PYTHONWARNINGS", "ignore");
    command
}

/// What `driver.py KIND` answers to `request`, by case id.
fn driver(kind: &str, request: &Value, home: &Path) -> Value {
    let mut child = ansible_command("python", home)
        .arg(data("driver.py"))
        .arg(kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the driver");
    let mut stdin = child.stdin.take().unwrap();
    let request = serde_json::to_vec(request).unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&request));
    let out = child.wait_with_output().unwrap();
    writer
        .join()
        .unwrap()
        .expect("send the cases to the driver");
    assert!(
        out.status.success(),
        "driver.py {kind} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver.py {kind} answered no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(
        answer["ansible"], ANSIBLE,
        "the virtual environment has another ansible-core: run tests/setup.sh (it installs \
         ansible-core {ANSIBLE} into target/testhosts/ansible)"
    );
    answer["cases"].take()
}

/// A directory of this test's own, empty (left as the last run left it,
/// to look at).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ansible")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every way the two sides differ, to be listed at once.
#[derive(Default)]
struct Disagreements {
    found: Vec<String>,
}

impl Disagreements {
    /// Where case `id` (from `source`) differs goes.
    fn case<'a>(&'a mut self, id: &'a str, source: &'a str) -> Differences<'a> {
        Differences {
            found: self,
            id,
            source,
        }
    }

    /// Fails listing them all, if there are any.
    fn check(self, kind: &str, cases: usize) {
        if self.found.is_empty() {
            return;
        }
        let mut list = String::new();
        for (i, found) in self.found.iter().enumerate() {
            let _ = writeln!(list, "{}. {found}", i + 1);
        }
        panic!(
            "{} disagreements with ansible-core {ANSIBLE} in {cases} {kind} cases:\n{list}",
            self.found.len()
        );
    }
}

/// One case's disagreements.
struct Differences<'a> {
    found: &'a mut Disagreements,
    id: &'a str,
    source: &'a str,
}

impl Differences<'_> {
    /// The case differs in `what`: ours, and Ansible's.
    fn add(&mut self, what: impl Display, ours: impl Display, ansible: impl Display) {
        let (id, source) = (self.id, self.source);
        self.found.found.push(format!(
            "{id} ({source})\n    {what}\n      ours:    {ours}\n      ansible: {ansible}"
        ));
    }
}

/// A JSON value as the report shows it: its type is in its spelling.
fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "(none)".to_owned(), Value::to_string)
}

/// At least 150 cases, each with an id of its own and a source in
/// ansible/ansible or its documentation; a deliberate difference only of
/// a kind the README's list of them has, word for word.
#[test]
fn the_cases_are_many_and_each_names_its_source() {
    let inventories: inventory::Cases = cases("inventories.toml");
    let (lines, blocks, _) = files::all();
    let total =
        inventories.inventory.len() + inventories.pattern.len() + lines.len() + blocks.len();
    assert!(total >= 150, "only {total} cases");
    let mut ids = std::collections::BTreeSet::new();
    let sourced = inventories
        .inventory
        .iter()
        .map(|c| (&c.id, &c.source))
        .chain(inventories.pattern.iter().map(|c| (&c.id, &c.source)))
        .chain(lines.iter().chain(&blocks).map(|c| (&c.id, &c.source)));
    for (id, source) in sourced {
        assert!(ids.insert(id), "two cases are named {id}");
        assert!(
            source.starts_with("ansible/ansible ")
                || source.starts_with("ansible/ansible-documentation "),
            "{id}: the source {source:?} is not a file of ansible/ansible or of its docs"
        );
    }
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(readme).expect("read README.md");
    let differing = inventories
        .inventory
        .iter()
        .map(|c| (&c.id, c.ours.is_some(), &c.difference))
        .chain(
            inventories
                .pattern
                .iter()
                .map(|c| (&c.id, c.ours.is_some(), &c.difference)),
        )
        .chain(
            lines
                .iter()
                .chain(&blocks)
                .map(|c| (&c.id, c.ours.is_some(), &c.difference)),
        );
    for (id, ours, difference) in differing {
        assert_eq!(
            ours,
            difference.is_some(),
            "{id}: `ours` goes with `difference`"
        );
        if let Some(why) = difference {
            assert!(
                readme.contains(&format!("- {why}\n")),
                "{id}: the difference {why:?} is not in the README's list of them"
            );
        }
    }
}
