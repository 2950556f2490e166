//! The CLI kit as a user meets it: the example tools run as processes
//! against the test hosts, with host lists and ranges, TOML and Ansible
//! inventories, patterns, `--json`, rolling batches, retry files, and each
//! exit code provoked.

use std::path::{Path, PathBuf};
use std::process::Command;

use chopsticks_tests::*;

/// How a kit tool's process ended, and what it printed.
pub(crate) struct ToolRun {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ToolRun {
    /// Runs `command` to its end.
    pub(crate) fn of(command: &mut Command) -> ToolRun {
        let out = command.output().expect("the tool runs");
        ToolRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// The hosts that have a recap line, in order.
    fn recap_hosts(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|l| l.contains(" ok=") && l.contains(" failed="))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    }
}

/// A scratch directory of this test binary.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(exe: &str, args: &[&str], state: &Path) -> ToolRun {
    ToolRun::of(
        Command::new(exe)
            .arg("-F")
            .arg(test_ssh_config())
            .args(args)
            .env("XDG_STATE_HOME", state),
    )
}

fn facts(args: &[&str], state: &Path) -> ToolRun {
    tool(env!("CARGO_BIN_EXE_facts"), args, state)
}

fn inventory(args: &[&str], state: &Path) -> ToolRun {
    tool(env!("CARGO_BIN_EXE_inventory"), args, state)
}

#[test]
fn host_lists_and_ranges_select_hosts_and_json_has_one_object_per_host() {
    let state = scratch("ranges");
    let run = facts(&["-H", "cs-many-[1:3],cs-many-07", "--json"], &state);
    assert_eq!(run.code, 0, "{}", run.text());
    let objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let hosts: Vec<&str> = objects
        .iter()
        .map(|o| o["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["cs-many-1", "cs-many-2", "cs-many-3", "cs-many-07"]);
    for o in &objects {
        assert_eq!(
            (o["step"].as_str(), o["status"].as_str()),
            (Some("facts"), Some("ok"))
        );
        assert!(
            o["value"]["kernel"].as_str().is_some_and(|k| !k.is_empty()),
            "{o}"
        );
    }
    // Without a host: this machine, through a local tunnel (the README's main command).
    let run = Command::new(env!("CARGO_BIN_EXE_facts"))
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(
        stdout.lines().nth(1).unwrap().starts_with("localhost "),
        "{stdout}"
    );
}

const INI: &str = "\
# an Ansible inventory, as it is
[web]
cs-many-1 role=frontend http_port=8080
cs-many-2 role=frontend
cs-many-3

[db]
cs-many-4 role=database
cs-many-5

[prod:children]
web
db

[staging]
cs-many-3
cs-many-5

[db:vars]
http_port=5432
";

const YAML: &str = "\
all:
  children:
    web:
      hosts:
        cs-many-[1:3]:
      vars:
        role: frontend
    db:
      hosts:
        cs-many-4:
          role: database
          http_port: 5432
        cs-many-5:
    prod:
      children:
        web:
        db:
    staging:
      hosts:
        cs-many-3:
        cs-many-5:
";

const TOML: &str = r#"
[hosts."cs-many-[1:3]"]
vars = { role = "frontend" }

[hosts.cs-many-4]
vars = { role = "database", http_port = 5432 }

[groups.web]
hosts = ["cs-many-[1:3]"]

[groups.db]
hosts = ["cs-many-4", "cs-many-5"]

[groups.prod]
children = ["web", "db"]

[groups.staging]
hosts = ["cs-many-3", "cs-many-5"]
"#;

#[test]
fn inventories_in_every_format_with_children_and_patterns() {
    let dir = scratch("inventories");
    for (file, text) in [("hosts", INI), ("inv.yml", YAML), ("fleet.toml", TOML)] {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        for (pattern, want) in [
            (
                "prod",
                vec![
                    "cs-many-1",
                    "cs-many-2",
                    "cs-many-3",
                    "cs-many-4",
                    "cs-many-5",
                ],
            ),
            ("prod:&staging", vec!["cs-many-3", "cs-many-5"]),
            ("web:!cs-many-2", vec!["cs-many-1", "cs-many-3"]),
            ("prod:!staging:&db", vec!["cs-many-4"]),
            ("~cs-many-[45]", vec!["cs-many-4", "cs-many-5"]),
        ] {
            let run = inventory(&["-i", path, "-l", pattern], &dir);
            assert_eq!(run.code, 0, "{file} {pattern}: {}", run.text());
            // In all's order, which for groups two deep is Python's hash
            // order in Ansible: compared as sets.
            let mut got = run.recap_hosts();
            got.sort();
            assert_eq!(got, want, "{file} {pattern}: {}", run.text());
        }
        // Variables reach the host's function typed, merged as Ansible merges them.
        let run = inventory(&["-i", path, "-l", "cs-many-1,cs-many-4"], &dir);
        assert_eq!(run.code, 0, "{}", run.text());
        let described = |host: &str| {
            run.stdout
                .lines()
                .find(|l| l.contains(&format!(" {host} ")) && l.contains("describe: "))
                .unwrap_or_else(|| panic!("{file}: no describe line for {host}: {}", run.text()))
                .to_owned()
        };
        assert!(
            described("cs-many-1").contains("describe: frontend"),
            "{file}: {}",
            run.text()
        );
        assert!(
            described("cs-many-4").contains("describe: database on port 5432"),
            "{file}: {}",
            run.text()
        );
    }
}

#[test]
fn inventory_settings_route_the_connection() {
    let dir = scratch("settings");
    // The address and port come from the inventory: a name ssh's config
    // maps to the fleet port goes where ansible_port says instead.
    let refused = test_env("CHOPSTICKS_TEST_REFUSED_PORT");
    let local = test_env("CHOPSTICKS_TEST_LOCAL_PORT");
    let ini = format!(
        "[good]\ncs-many-20 ansible_host=127.0.0.1 ansible_port={local}\n\
         [bad]\ncs-many-21 ansible_host=127.0.0.1 ansible_port={refused}\n"
    );
    let path = dir.join("hosts");
    std::fs::write(&path, ini).unwrap();
    let run = inventory(&["-i", path.to_str().unwrap()], &dir);
    assert_eq!(run.code, 4, "{}", run.text());
    assert!(
        run.stdout.contains("unreachable cs-many-21") && run.stdout.contains(&refused),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("ok          cs-many-20  kernel: "),
        "{}",
        run.text()
    );
}

/// `ansible_connection` takes a host into a container or onto this
/// machine, under its inventory name (its variables found by it); an
/// inventory script is run; `localhost` is this machine without an entry;
/// what chopsticks cannot honour stops the run before any host.
#[test]
fn connection_variables_and_inventory_scripts_reach_hosts_as_ansible_would() {
    let dir = scratch("connections");
    let (busybox, deb12) = (test_container("busybox"), test_container("deb12"));
    let ini = format!(
        "[boxes]\n\
         box ansible_connection=docker ansible_host={busybox} role=boxed\n\
         here ansible_connection=local role=local\n\
         docker:{deb12} role=named\n"
    );
    let path = dir.join("hosts");
    std::fs::write(&path, ini).unwrap();
    let run = inventory(&["-i", path.to_str().unwrap()], &dir);
    assert_eq!(run.code, 0, "{}", run.text());
    for (host, role) in [
        ("box", "boxed"),
        ("here", "local"),
        (&format!("docker:{deb12}"), "named"),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(&format!(" {host} "))
                    && l.contains(&format!("describe: {role}"))),
            "{host}: {}",
            run.text()
        );
    }
    // An inventory script, by Ansible's protocol; and the implicit localhost.
    let script = dir.join("cloud.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase $1 in\n--list) echo '{{\"boxes\": {{\"hosts\": [\"box\"], \
             \"vars\": {{\"ansible_connection\": \"docker\", \"role\": \"scripted\"}}}}, \
             \"_meta\": {{\"hostvars\": {{\"box\": {{\"ansible_host\": \"{busybox}\"}}}}}}}}' ;;\n\
             *) exit 3 ;;\nesac\n"
        ),
    )
    .unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&script, executable).unwrap();
    let run = inventory(
        &["-i", script.to_str().unwrap(), "-l", "box:localhost"],
        &dir,
    );
    assert_eq!(run.code, 0, "{}", run.text());
    assert_eq!(run.recap_hosts(), ["box", "localhost"], "{}", run.text());
    assert!(run.stdout.contains("describe: scripted"), "{}", run.text());
    // A become method chopsticks does not have: refused, naming the host.
    std::fs::write(
        &path,
        "web1 ansible_become=yes ansible_become_method=doas\n",
    )
    .unwrap();
    let run = inventory(&["-i", path.to_str().unwrap()], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr
            .contains("web1: cannot be reached as its inventory says: ansible_become_method"),
        "{}",
        run.text()
    );
}

#[test]
fn exit_codes_are_0_2_4_and_1() {
    let dir = scratch("codes");
    assert_eq!(facts(&["-H", "cs-many-1"], &dir).code, 0);
    // 2: something failed on a reachable host (cs-busybox's apt has no lists).
    let run = tool(
        env!("CARGO_BIN_EXE_deploy"),
        &["-H", "cs-busybox", "--check"],
        &dir,
    );
    assert_eq!(run.code, 2, "{}", run.text());
    // 4: a host that cannot be reached.
    let run = facts(&["-H", "cs-many-1,cs-refused"], &dir);
    assert_eq!(run.code, 4, "{}", run.text());
    assert!(
        run.stdout.contains("cs-many-1 "),
        "the others still report: {}",
        run.text()
    );
    // 1: usage: an unknown flag gets clap's usage; a bad inventory its file and line.
    let run = facts(&["--frobnicate"], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains("unexpected argument '--frobnicate'")
            && run.stderr.contains("Usage: facts"),
        "{}",
        run.text()
    );
    let bad = dir.join("broken.ini");
    std::fs::write(&bad, "[web]\ncs-many-1\n[web:hostvars]\nx=1\n").unwrap();
    let run = inventory(&["-i", bad.to_str().unwrap()], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains(&format!(
            "{}:3: `[web:hostvars]`: unknown section kind",
            bad.display()
        )),
        "{}",
        run.text()
    );
    let bad = dir.join("broken.yml");
    std::fs::write(
        &bad,
        "all:\n  children:\n    web:\n      host:\n        a:\n",
    )
    .unwrap();
    let run = inventory(&["-i", bad.to_str().unwrap()], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains(&format!("{}:4: ", bad.display())),
        "{}",
        run.text()
    );
    let bad = dir.join("broken.toml");
    std::fs::write(&bad, "[hosts.a]\n\nadress = \"x\"\n").unwrap();
    let run = inventory(&["-i", bad.to_str().unwrap()], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr.contains(&format!("{}:3: ", bad.display())),
        "{}",
        run.text()
    );
    let run = inventory(&["-H", "cs-many-1", "-l", "nosuchgroup"], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stderr
            .contains("`nosuchgroup` matches no host or group"),
        "{}",
        run.text()
    );
    let run = inventory(&[], &dir);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.stderr.contains("no hosts"), "{}", run.text());
}

#[test]
fn serial_batches_stop_after_a_failed_batch_and_the_retry_file_reruns_the_failed() {
    let dir = scratch("serial");
    let retry = dir.join("failed.txt");
    let retry_arg = retry.to_str().unwrap();
    // Batches of 2: [cs-refused, cs-many-1] then [cs-many-2, cs-many-3].
    let run = inventory(
        &[
            "-H",
            "cs-refused,cs-many-1,cs-many-2,cs-many-3",
            "--serial",
            "2",
            "--max-fail-percentage",
            "0",
            "--retry-file",
            retry_arg,
        ],
        &dir,
    );
    assert_eq!(run.code, 4, "{}", run.text());
    assert_eq!(
        run.recap_hosts(),
        ["cs-refused", "cs-many-1"],
        "{}",
        run.text()
    );
    assert!(
        !run.stdout.contains("cs-many-2") && !run.stdout.contains("cs-many-3"),
        "a later batch ran: {}",
        run.text()
    );
    assert!(
        run.stderr
            .contains("stopped after batch 1: 50% of its hosts failed")
            && run.stderr.contains("not run: cs-many-2, cs-many-3"),
        "{}",
        run.text()
    );
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "cs-refused\n");
    // Without the stop rule every batch runs.
    let run = inventory(
        &["-H", "cs-refused,cs-many-1,cs-many-2", "--serial", "2"],
        &dir,
    );
    assert_eq!(run.recap_hosts().len(), 3, "{}", run.text());
    // --limit @FILE selects exactly the failed hosts of the last run.
    let limit = format!("@{retry_arg}");
    let run = inventory(
        &[
            "-H",
            "cs-refused,cs-many-1,cs-many-2,cs-many-3",
            "-l",
            &limit,
        ],
        &dir,
    );
    assert_eq!(run.recap_hosts(), ["cs-refused"], "{}", run.text());
    // The default retry file lives under XDG_STATE_HOME, named after the tool.
    let default = dir.join("chopsticks/inventory.retry");
    assert_eq!(std::fs::read_to_string(&default).unwrap(), "cs-refused\n");
    assert!(run.stderr.contains("--limit @"), "{}", run.text());
}

#[test]
fn verbose_shows_the_hosts_stderr_and_log_records() {
    let dir = scratch("verbose");
    let quiet = inventory(&["-H", "cs-many-1"], &dir);
    assert_eq!(quiet.code, 0, "{}", quiet.text());
    assert!(!quiet.stderr.contains("os-release"), "{}", quiet.text());
    let loud = inventory(&["-H", "cs-many-1", "-v"], &dir);
    assert_eq!(loud.code, 0, "{}", loud.text());
    assert!(
        loud.stderr.contains("[cs-many-1] read /etc/os-release"),
        "{}",
        loud.text()
    );
    assert!(
        loud.stderr
            .contains("INFO  inventory: [cs-many-1] described as no role"),
        "{}",
        loud.text()
    );
}

#[test]
fn quiet_shows_only_failures_and_the_recap() {
    let dir = scratch("quiet");
    let run = inventory(&["-H", "cs-many-1,cs-refused", "-q"], &dir);
    assert_eq!(run.code, 4, "{}", run.text());
    assert!(
        !run.stdout.contains("ok          cs-many-1"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("unreachable cs-refused"),
        "{}",
        run.text()
    );
    assert_eq!(run.recap_hosts(), ["cs-many-1", "cs-refused"]);
}

/// `--color` decides for everything the tool draws, through one setting:
/// the `[host]` prefixes of the hosts' stderr and the progress line too,
/// which a pipe gets with `always` and never gets with `never` or `-q`.
#[test]
fn color_reaches_host_prefixes_and_the_progress_line_and_quiet_silences_progress() {
    let state = scratch("color");
    let hosts = ["-H", "cs-many-1,cs-many-2,cs-many-3"];
    let progress = "\r\x1b[2K";
    let always = inventory(&[&hosts[..], &["-v", "--color", "always"]].concat(), &state);
    assert_eq!(always.code, 0, "{}", always.text());
    let prefixed = always
        .stderr
        .lines()
        .find(|l| l.contains("read /etc/os-release"))
        .unwrap_or_else(|| panic!("no host line: {}", always.text()));
    assert!(
        prefixed.contains("\x1b[") && prefixed.contains("[cs-many-"),
        "{prefixed:?}"
    );
    assert!(always.stderr.contains(progress), "{}", always.text());
    assert!(always.stdout.contains("\x1b[32m"), "{}", always.text());
    let never = inventory(&[&hosts[..], &["-v", "--color", "never"]].concat(), &state);
    assert_eq!(never.code, 0, "{}", never.text());
    assert!(!never.stderr.contains('\x1b') && !never.stdout.contains('\x1b'));
    assert!(never.stderr.contains("[cs-many-1] read /etc/os-release"));
    let quiet = inventory(&[&hosts[..], &["-q", "--color", "always"]].concat(), &state);
    assert_eq!(quiet.code, 0, "{}", quiet.text());
    assert!(!quiet.stderr.contains(progress), "{}", quiet.text());
    // NO_COLOR is honoured by auto, here where nothing is a terminal anyway.
    let out = Command::new(env!("CARGO_BIN_EXE_inventory"))
        .args(["-F"])
        .arg(test_ssh_config())
        .args(hosts)
        .args(["-v", "--color", "auto"])
        .env("XDG_STATE_HOME", &state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
    std::fs::remove_dir_all(state).unwrap();
}
