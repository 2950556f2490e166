//! `ops::line` against `lineinfile` (`tests/ansible/lines.toml`) and
//! `ops::block` against `blockinfile` (`tests/ansible/blocks.toml`): the
//! same file, the same arguments; `changed` in check mode and when
//! applied, failure against failure, and the file's bytes after each.
//! (Idempotence has cases of its own: the file a task leaves, and the
//! task again.)

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chopsticks::ops::{self, Block, Change, Line, Mode, OpError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{cases, driver, scratch, Differences, Disagreements};

/// `tests/ansible/lines.toml` or `blocks.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cases {
    /// Starting contents that several cases share, by name.
    #[serde(default)]
    fixtures: BTreeMap<String, String>,
    #[serde(default, rename = "line")]
    lines: Vec<FileCase>,
    #[serde(default, rename = "block")]
    blocks: Vec<FileCase>,
}

/// A file and the task that edits it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileCase {
    pub(crate) id: String,
    pub(crate) source: String,
    /// The file's path in the case's directory (default `file.txt`).
    path: Option<String>,
    /// Its starting contents: a fixture's or its own; with neither, there
    /// is no file.
    fixture: Option<String>,
    content: Option<String>,
    /// The task's arguments, by Ansible's names (`path` aside).
    args: toml::Table,
    /// What we do instead, on purpose: the file we leave.
    pub(crate) ours: Option<OursFile>,
    /// Why we differ (the README's kit section says it too).
    pub(crate) difference: Option<String>,
}

/// What we do instead, on purpose. `file`: the same edit with the file's
/// own line ends (and `changed`, where that differs too). `error`: we
/// refuse the task (both runs fail saying this, the file untouched) where
/// Ansible carries it out. `changed` alone: we carry it out (the file
/// untouched) where Ansible fails.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OursFile {
    file: Option<String>,
    changed: Option<bool>,
    error: Option<String>,
}

/// Both kinds of cases, read.
pub(crate) fn all() -> (Vec<FileCase>, Vec<FileCase>, BTreeMap<String, String>) {
    let lines: Cases = cases("lines.toml");
    let blocks: Cases = cases("blocks.toml");
    assert!(
        lines.blocks.is_empty() && blocks.lines.is_empty(),
        "lines in lines.toml, blocks in blocks.toml"
    );
    let mut fixtures = lines.fixtures;
    fixtures.extend(blocks.fixtures);
    (lines.lines, blocks.blocks, fixtures)
}

impl FileCase {
    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("file.txt")
    }

    fn content<'a>(&'a self, fixtures: &'a BTreeMap<String, String>) -> Option<&'a str> {
        match (&self.fixture, &self.content) {
            (Some(name), None) => Some(
                fixtures
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: no fixture {name}", self.id)),
            ),
            (None, content) => content.as_deref(),
            (Some(_), Some(_)) => panic!("{}: a fixture or a content, not both", self.id),
        }
    }
}

#[test]
fn lines_and_blocks_edit_files_as_ansible_does() {
    let (lines, blocks, fixtures) = all();
    let mut request = Vec::new();
    for (module, case) in lines
        .iter()
        .map(|c| ("lineinfile", c))
        .chain(blocks.iter().map(|c| ("blockinfile", c)))
    {
        let args = serde_json::to_value(&case.args).unwrap();
        request.push(json!({
            "id": case.id, "module": module, "args": args,
            "path": case.path(), "content": case.content(&fixtures),
        }));
    }
    let dir = scratch("files");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let answer = driver("files", &json!({ "cases": request }), &home);
    let mut answers: BTreeMap<String, Answer> =
        serde_json::from_value(answer).expect("the driver's files answer");
    let mut found = Disagreements::default();
    for case in &lines {
        let [check, apply] = ["check", "apply"].map(|phase| line_spec(case, &dir.join(phase)));
        let ansible = answers.remove(&case.id).unwrap();
        let differ = found.case(&case.id, &case.source);
        compare(
            case,
            &fixtures,
            Spec::Line(check, apply),
            &dir,
            ansible,
            differ,
        );
    }
    for case in &blocks {
        let [check, apply] = ["check", "apply"].map(|phase| block_spec(case, &dir.join(phase)));
        let ansible = answers.remove(&case.id).unwrap();
        let differ = found.case(&case.id, &case.source);
        compare(
            case,
            &fixtures,
            Spec::Block(check, apply),
            &dir,
            ansible,
            differ,
        );
    }
    found.check("line and block", lines.len() + blocks.len());
}

/// The spec of a case, once for the check run's copy and once for the
/// applied one.
enum Spec {
    Line(Line, Line),
    Block(Block, Block),
}

impl Spec {
    fn run(&self, mode: Mode) -> Result<Change, OpError> {
        match (self, mode) {
            (Spec::Line(check, _), Mode::Check) => ops::line(check.clone(), mode),
            (Spec::Line(_, apply), Mode::Apply) => ops::line(apply.clone(), mode),
            (Spec::Block(check, _), Mode::Check) => ops::block(check.clone(), mode),
            (Spec::Block(_, apply), Mode::Apply) => ops::block(apply.clone(), mode),
        }
    }
}

fn text(args: &toml::Table, key: &str) -> Option<String> {
    args.get(key).map(|v| {
        v.as_str()
            .unwrap_or_else(|| panic!("{key} = {v}: text expected"))
            .to_owned()
    })
}

fn flag(args: &toml::Table, key: &str) -> bool {
    args.get(key).is_some_and(|v| {
        v.as_bool()
            .unwrap_or_else(|| panic!("{key} = {v}: true or false expected"))
    })
}

/// `state`: present (the default) or absent.
fn absent(args: &toml::Table) -> bool {
    match text(args, "state").as_deref() {
        None | Some("present") => false,
        Some("absent") => true,
        Some(other) => panic!("state = {other:?}: present or absent expected"),
    }
}

/// Refuses arguments that the spec does not map: a case must not test
/// what only Ansible is told.
fn known(case: &FileCase, keys: &[&str]) {
    for key in case.args.keys() {
        let known = keys.contains(&key.as_str());
        assert!(
            known,
            "{}: the argument {key} maps to nothing of ours",
            case.id
        );
    }
}

/// The `lineinfile` arguments `ops::Line` has.
const LINE_ARGS: [&str; 9] = [
    "line",
    "regexp",
    "search_string",
    "insertafter",
    "insertbefore",
    "firstmatch",
    "backrefs",
    "state",
    "create",
];

/// Ansible's `lineinfile` arguments as an `ops::Line`.
fn line_spec(case: &FileCase, root: &Path) -> Line {
    known(case, &LINE_ARGS);
    let args = &case.args;
    let path = root.join(&case.id).join(case.path());
    let mut spec = Line::new(path, text(args, "line").unwrap_or_default());
    if let Some(regexp) = text(args, "regexp") {
        spec = spec.matching(regexp);
    }
    if let Some(search) = text(args, "search_string") {
        spec = spec.search_string(search);
    }
    if let Some(anchor) = text(args, "insertafter") {
        spec = spec.insert_after(anchor);
    }
    if let Some(anchor) = text(args, "insertbefore") {
        spec = spec.insert_before(anchor);
    }
    if flag(args, "firstmatch") {
        spec = spec.first_match();
    }
    if flag(args, "backrefs") {
        spec = spec.backrefs();
    }
    if absent(args) {
        spec = spec.absent();
    }
    spec.create(flag(args, "create"))
}

/// The `blockinfile` arguments `ops::Block` has.
const BLOCK_ARGS: [&str; 10] = [
    "block",
    "marker",
    "marker_begin",
    "marker_end",
    "insertafter",
    "insertbefore",
    "prepend_newline",
    "append_newline",
    "state",
    "create",
];

/// Ansible's `blockinfile` arguments as an `ops::Block`.
fn block_spec(case: &FileCase, root: &Path) -> Block {
    known(case, &BLOCK_ARGS);
    let args = &case.args;
    let path = root.join(&case.id).join(case.path());
    let mut spec = Block::new(path, text(args, "block").unwrap_or_default());
    if let Some(marker) = text(args, "marker") {
        spec = spec.marker(marker);
    }
    if let Some(word) = text(args, "marker_begin") {
        spec = spec.marker_begin(word);
    }
    if let Some(word) = text(args, "marker_end") {
        spec = spec.marker_end(word);
    }
    if let Some(anchor) = text(args, "insertafter") {
        spec = spec.insert_after(anchor);
    }
    if let Some(anchor) = text(args, "insertbefore") {
        spec = spec.insert_before(anchor);
    }
    if flag(args, "prepend_newline") {
        spec = spec.prepend_newline();
    }
    if flag(args, "append_newline") {
        spec = spec.append_newline();
    }
    if absent(args) {
        spec = spec.absent();
    }
    spec.create(flag(args, "create"))
}

/// What Ansible did with a case: driver.py's answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    /// The task in check mode, and the file after it.
    check: Outcome,
    check_file: Option<String>,
    /// The task applied, and the file after it.
    apply: Outcome,
    file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    changed: bool,
    failed: bool,
    msg: Value,
}

impl Outcome {
    fn agrees(&self, ours: &Result<Change, OpError>) -> bool {
        match ours {
            Ok(change) => !self.failed && self.changed == change.changed,
            Err(_) => self.failed,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.failed, &self.msg) {
            (true, Value::String(msg)) => write!(f, "failed: {msg}"),
            (true, msg) => write!(f, "failed: {msg}"),
            (false, _) => write!(f, "changed: {}", self.changed),
        }
    }
}

/// A run of ours as the report shows it.
fn outcome(run: &Result<Change, OpError>) -> String {
    match run {
        Ok(change) => format!("changed: {}", change.changed),
        Err(e) => format!("failed: {e}"),
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn shown_file(file: Option<&str>) -> String {
    file.map_or_else(|| "(no file)".to_owned(), |f| format!("{f:?}"))
}

/// Lays out the case's file twice, runs it in check mode on one copy and
/// applied on the other, and compares.
fn compare(
    case: &FileCase,
    fixtures: &BTreeMap<String, String>,
    spec: Spec,
    dir: &Path,
    ansible: Answer,
    mut differ: Differences,
) {
    let [check_path, apply_path] = ["check", "apply"].map(|phase| {
        let home = dir.join(phase).join(&case.id);
        std::fs::create_dir_all(&home).unwrap();
        let path = home.join(case.path());
        if let Some(content) = case.content(fixtures) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        }
        path
    });
    let runs = [
        ("in check mode", spec.run(Mode::Check), &ansible.check),
        ("applied", spec.run(Mode::Apply), &ansible.apply),
    ];
    let original = case.content(fixtures).map(str::to_owned);
    match &case.ours {
        Some(OursFile {
            error: Some(says), ..
        }) => {
            for (what, ours, theirs) in &runs {
                if !ours
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains(says.as_str()))
                {
                    differ.add(
                        format_args!("the task {what}, ours on purpose"),
                        outcome(ours),
                        format_args!("failed: ...{says}... (the case's)"),
                    );
                }
                if theirs.failed {
                    differ.add(
                        format_args!("the task {what}: Ansible carries it out"),
                        "(the case says so)",
                        theirs,
                    );
                }
            }
            for path in [&check_path, &apply_path] {
                if read(path) != original {
                    differ.add(
                        "the file after a refused task",
                        shown_file(read(path).as_deref()),
                        shown_file(original.as_deref()),
                    );
                }
            }
            return;
        }
        Some(OursFile {
            file: None,
            changed: Some(changed),
            ..
        }) => {
            for (what, ours, theirs) in &runs {
                if !ours.as_ref().is_ok_and(|c| c.changed == *changed) {
                    differ.add(
                        format_args!("the task {what}, ours on purpose"),
                        outcome(ours),
                        format_args!("changed: {changed} (the case's)"),
                    );
                }
                if !theirs.failed {
                    differ.add(
                        format_args!("the task {what}: Ansible fails it"),
                        "(the case says so)",
                        theirs,
                    );
                }
            }
            if read(&apply_path) != original {
                differ.add(
                    "the file after the task, ours on purpose",
                    shown_file(read(&apply_path).as_deref()),
                    shown_file(original.as_deref()),
                );
            }
            return;
        }
        _ => {}
    }
    for (what, ours, theirs) in &runs {
        match case.ours.as_ref().and_then(|o| o.changed) {
            Some(changed) if !ours.as_ref().is_ok_and(|c| c.changed == changed) => differ.add(
                format_args!("the task {what}, ours on purpose"),
                outcome(ours),
                format_args!("changed: {changed} (the case's)"),
            ),
            Some(_) => {}
            None if !theirs.agrees(ours) => {
                differ.add(format_args!("the task {what}"), outcome(ours), theirs)
            }
            None => {}
        }
    }
    let check_file = read(&check_path);
    if check_file != ansible.check_file {
        differ.add(
            "the file after check mode",
            shown_file(check_file.as_deref()),
            shown_file(ansible.check_file.as_deref()),
        );
    }
    let (file, theirs) = (read(&apply_path), ansible.file.as_deref());
    match &case.ours {
        // On purpose: the same edit with the file's own line ends.
        Some(OursFile {
            file: Some(expected),
            ..
        }) => {
            if file.as_deref() != Some(expected.as_str()) {
                differ.add(
                    "the file after the task, ours on purpose",
                    shown_file(file.as_deref()),
                    format_args!("{expected:?} (the case's)"),
                );
            }
            let unix = |f: &str| f.replace("\r\n", "\n");
            if theirs.map(unix) != Some(unix(expected)) {
                differ.add(
                    "the case's file but for line ends",
                    format_args!("{expected:?} (the case's)"),
                    shown_file(theirs),
                );
            }
        }
        _ if file.as_deref() != theirs => differ.add(
            "the file after the task",
            shown_file(file.as_deref()),
            shown_file(theirs),
        ),
        _ => {}
    }
}
