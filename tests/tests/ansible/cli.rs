//! The driver is the CLI's truth: for the cases marked `cli = true`,
//! `ansible-inventory -i FILE --list` / `--host H` and `ansible -i FILE
//! PATTERN --list-hosts` say what the driver says.

use std::collections::BTreeSet;
use std::process::Output;
use std::thread::JoinHandle;

use serde_json::{Map, Value};

use crate::ansible_command;
use crate::inventory::{prepared, Answer, Selected};

/// What a command of a case prints, and what the driver said instead.
enum Check<'a> {
    /// `ansible-inventory --list`: the inventory.
    List(&'a Answer),
    /// `ansible-inventory --host H`: a host's variables.
    Host(&'a Answer, String),
    /// `ansible --list-hosts`: a pattern's hosts.
    Hosts(&'a Selected),
}

/// A command of a case, running on a thread of its own.
struct Run<'a> {
    case: &'a str,
    check: Check<'a>,
    args: Vec<String>,
    output: JoinHandle<Output>,
}

fn run<'a>(case: &'a str, check: Check<'a>, args: &[&str]) -> Run<'a> {
    let program = match check {
        Check::Hosts(_) => "ansible",
        _ => "ansible-inventory",
    };
    let mut command = ansible_command(program, &prepared().home);
    command.args(args);
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.insert(0, program.to_owned());
    Run {
        case,
        check,
        args,
        output: std::thread::spawn(move || command.output().expect("run the ansible CLI")),
    }
}

#[test]
fn the_driver_says_what_the_ansible_commands_say() {
    let prepared = prepared();
    let mut runs = Vec::new();
    for case in prepared.cases.inventory.iter().filter(|c| c.cli) {
        let path = prepared.paths[&case.id].to_str().unwrap();
        let answer = &prepared.answers[&case.id];
        runs.push(run(&case.id, Check::List(answer), &["-i", path, "--list"]));
        if let Some((host, ..)) = answer.hosts.first() {
            let check = Check::Host(answer, host.clone());
            runs.push(run(&case.id, check, &["-i", path, "--host", host]));
        }
    }
    for case in prepared.cases.pattern.iter().filter(|c| c.cli) {
        let path = prepared.paths[&case.inventory].to_str().unwrap();
        let pattern = prepared.patterns[&case.id].as_str();
        let check = Check::Hosts(prepared.selected(case));
        // Ansible takes an @FILE only as a limit.
        let args = match pattern.contains('@') {
            true => vec!["-i", path, "all", "--limit", pattern, "--list-hosts"],
            false => vec!["-i", path, pattern, "--list-hosts"],
        };
        runs.push(run(&case.id, check, &args));
    }
    let marked = prepared.cases.inventory.iter().filter(|c| c.cli).count()
        + prepared.cases.pattern.iter().filter(|c| c.cli).count();
    assert!(marked >= 8, "only {marked} cases are marked cli = true");

    let mut wrong = Vec::new();
    for Run {
        case,
        check,
        args,
        output,
    } in runs
    {
        let out = output.join().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        let differs = match &check {
            Check::List(answer) | Check::Host(answer, _) if !out.status.success() => answer
                .error
                .is_none()
                .then(|| "the CLI cannot read the inventory, the driver can".to_owned()),
            Check::List(answer) => list_differs(&said, answer),
            Check::Host(answer, host) => host_differs(&said, answer, host),
            Check::Hosts(selected) => hosts_differ(&out, selected),
        };
        if let Some(why) = differs {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let args = args.join(" ");
            wrong.push(format!(
                "{case}: {args}\n    {why}\n    stderr: {}",
                stderr.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the driver and the CLI disagree:\n{}",
        wrong.join("\n")
    );
}

fn json(said: &str) -> Result<Value, String> {
    serde_json::from_str(said).map_err(|e| format!("the CLI printed no JSON ({e})"))
}

/// `--list`: every host's variables, and each group's hosts (its own and
/// its children's).
fn list_differs(said: &str, answer: &Answer) -> Option<String> {
    let list = match json(said) {
        Ok(list) => list,
        Err(e) => return Some(e),
    };
    let empty = Map::new();
    for (name, vars, _) in &answer.hosts {
        let cli = list["_meta"]["hostvars"][name]
            .as_object()
            .unwrap_or(&empty);
        if cli != vars {
            return Some(format!(
                "{name}: the CLI's variables {cli:?}, the driver's {vars:?}"
            ));
        }
    }
    for (name, hosts, _) in &answer.groups {
        if list.get(name).is_none() {
            continue; // the CLI leaves out groups without hosts or children
        }
        let mut cli = BTreeSet::new();
        members(&list, name, &mut cli, 0);
        let theirs: BTreeSet<&str> = hosts.iter().map(String::as_str).collect();
        if cli != theirs {
            return Some(format!(
                "group {name}: the CLI's hosts {cli:?}, the driver's {theirs:?}"
            ));
        }
    }
    None
}

fn members<'a>(list: &'a Value, group: &str, into: &mut BTreeSet<&'a str>, depth: usize) {
    assert!(depth < 64, "groups nested too deep in the CLI's --list");
    for host in list[group]["hosts"].as_array().into_iter().flatten() {
        into.insert(host.as_str().unwrap());
    }
    for child in list[group]["children"].as_array().into_iter().flatten() {
        members(list, child.as_str().unwrap(), into, depth + 1);
    }
}

/// `--host H`: its variables.
fn host_differs(said: &str, answer: &Answer, host: &str) -> Option<String> {
    let cli = match json(said) {
        Ok(cli) => cli,
        Err(e) => return Some(e),
    };
    let (_, vars, _) = answer.hosts.iter().find(|(name, ..)| name == host).unwrap();
    (cli.as_object() != Some(vars))
        .then(|| format!("the CLI's variables {cli}, the driver's {vars:?}"))
}

/// `--list-hosts`: `  hosts (N):` and a name a line. Where Ansible raises
/// an error (a subscript past the end), `ansible PATTERN` lists no host
/// and warns "No hosts matched, nothing to do"; with `--limit` it fails.
fn hosts_differ(out: &Output, selected: &Selected) -> Option<String> {
    let said = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = said
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("hosts ("))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match (&selected.hosts, out.status.success()) {
        (Some(hosts), true) if listed == *hosts => None,
        (None, false) => None,
        (None, true) => {
            let nothing =
                String::from_utf8_lossy(&out.stderr).contains("No hosts matched, nothing to do");
            (!nothing || !listed.is_empty())
                .then(|| format!("the CLI lists {listed:?}, the driver says {selected}"))
        }
        (_, true) => Some(format!(
            "the CLI lists {listed:?}, the driver says {selected}"
        )),
        (Some(_), false) => Some(format!("the CLI fails, the driver says {selected}")),
    }
}
