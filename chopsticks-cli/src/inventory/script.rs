//! Dynamic inventories, by Ansible's script protocol: an executable run
//! with `--list` prints JSON (groups with `hosts`, `vars` and `children`,
//! and `_meta.hostvars` for each host's variables; without them it is run
//! again with `--host HOST` for each host); and that same JSON in a file,
//! as `ansible-inventory --list` prints it.
//!
//! The script is the inventory the user named with `-i`, run as Ansible
//! runs it: its own program, with no shell, no input, and bounds: at most
//! [`SCRIPT_TIME`] for all its runs together and [`MAX_SCRIPT_OUTPUT`]
//! bytes of output a run. Nothing the JSON says is run.

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{check_host, check_vars, Inventory, InventoryError};

/// How long an inventory script may take: its `--list` run and every
/// `--host` run together.
pub const SCRIPT_TIME: Duration = Duration::from_secs(120);

/// The most a run of an inventory script may print on stdout.
pub const MAX_SCRIPT_OUTPUT: usize = 64 << 20;

/// How much of a failed run's stderr its error shows.
const STDERR_SHOWN: usize = 4096;

/// Whether `path` is a program to run: an executable file that starts
/// with `#!` or is an ELF binary. (An inventory file that is merely
/// executable, as files copied from elsewhere often are, is read.)
pub(super) fn is_script(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let mut start = [0u8; 4];
    executable
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut start))
            .is_ok_and(|()| start.starts_with(b"#!") || start == *b"\x7fELF")
}

/// Whether `text` is JSON in the shape `ansible-inventory --list` prints
/// (groups with lists of hosts and children, `_meta`), rather than a YAML
/// inventory written as JSON.
pub(super) fn is_list_json(text: &str) -> bool {
    let Ok(Ordered(groups)) = serde_json::from_str::<Ordered>(text) else {
        return false;
    };
    groups.iter().any(|(name, body)| {
        name == "_meta"
            || body.is_array()
            || body
                .get("children")
                .or_else(|| body.get("hosts"))
                .is_some_and(Value::is_array)
    })
}

/// Runs the inventory script `path` and reads what it prints.
pub(super) fn run(path: &Path, inv: &mut Inventory) -> Result<(), InventoryError> {
    run_within(path, inv, SCRIPT_TIME)
}

/// [`run`], all its runs within `time`.
fn run_within(path: &Path, inv: &mut Inventory, time: Duration) -> Result<(), InventoryError> {
    let deadline = (Instant::now() + time, time);
    let list = output(path, &["--list"], deadline)?;
    let text = String::from_utf8(list)
        .map_err(|_| InventoryError::at(path, None, "`--list` printed text that is not UTF-8"))?;
    read_list(&text, path, inv, &mut |host| {
        let vars = output(path, &["--host", host], deadline)?;
        if vars.trim_ascii().is_empty() {
            return Ok(Map::new());
        }
        serde_json::from_slice::<Map<String, Value>>(&vars).map_err(|e| {
            InventoryError::at(
                path,
                None,
                format!("`--host {host}` printed no JSON map of variables: {e}"),
            )
        })
    })
}

/// Asks for one host's variables (an inventory script's `--host`).
pub(super) type HostVars<'a> = dyn FnMut(&str) -> Result<Map<String, Value>, InventoryError> + 'a;

/// Reads `text`, the JSON of an inventory script's `--list`: each host's
/// variables come from `_meta.hostvars`, or else from `host_vars(host)`.
pub(super) fn read_list(
    text: &str,
    file: &Path,
    inv: &mut Inventory,
    host_vars: &mut HostVars<'_>,
) -> Result<(), InventoryError> {
    let err = |message: String| InventoryError::at(file, None, message);
    let Ordered(groups) = serde_json::from_str(text).map_err(|e| {
        InventoryError::at(
            file,
            Some(e.line()),
            format!("not the JSON of an inventory's --list (a map of groups): {e}"),
        )
    })?;
    let mut meta = None;
    let mut hosts: Vec<String> = Vec::new();
    for (name, body) in groups {
        if name == "_meta" {
            meta = Some(body);
            continue;
        }
        if name.is_empty() {
            return Err(err("a group with an empty name".into()));
        }
        inv.group_mut(&name);
        // As Ansible reads it: a list is the group's hosts, a map without
        // hosts, vars or children is the variables of a host of the name.
        let body = match body {
            Value::Object(map)
                if !["hosts", "vars", "children"]
                    .iter()
                    .any(|k| map.contains_key(*k)) =>
            {
                let mut group = Map::new();
                group.insert("hosts".into(), Value::from(vec![name.clone()]));
                group.insert("vars".into(), Value::Object(map));
                group
            }
            Value::Object(map) => map,
            Value::Array(list) => Map::from_iter([("hosts".to_owned(), Value::Array(list))]),
            other => {
                return Err(err(format!(
                    "the group {name} is {other}: a group is a list of hosts or a map of hosts, \
                     vars and children"
                )))
            }
        };
        for (key, value) in body {
            match (key.as_str(), value) {
                ("hosts", Value::Array(list)) => {
                    for host in list {
                        let host = name_of(&host)
                            .ok_or_else(|| err(format!("{name}.hosts lists {host}, not a name")))?;
                        check_host(&host).map_err(|e| err(format!("{name}.hosts: {e}")))?;
                        if inv.host(&host).is_none() {
                            hosts.push(host.clone());
                        }
                        inv.add_to_group(&name, &host);
                    }
                }
                ("vars", Value::Object(vars)) => {
                    check_vars(&vars).map_err(|e| err(format!("{name}.vars: {e}")))?;
                    inv.group_mut(&name).vars.extend(vars);
                }
                ("children", Value::Array(list)) => {
                    for child in list {
                        let child = name_of(&child).ok_or_else(|| {
                            err(format!("{name}.children lists {child}, not a group name"))
                        })?;
                        inv.add_child(&name, &child);
                    }
                }
                ("hosts" | "children", other) => {
                    return Err(err(format!("{name}.{key} is {other}, not a list")))
                }
                ("vars", other) => return Err(err(format!("{name}.vars is {other}, not a map"))),
                // Ansible reads nothing else of a group.
                _ => {}
            }
        }
    }
    let hostvars = match meta {
        None => None,
        Some(Value::Object(mut meta)) => match meta.remove("hostvars") {
            None => None,
            Some(Value::Object(all)) => Some(all),
            Some(other) => return Err(err(format!("_meta.hostvars is {other}, not a map"))),
        },
        Some(other) => return Err(err(format!("_meta is {other}, not a map"))),
    };
    for host in hosts {
        let vars = match &hostvars {
            Some(all) => match all.get(&host) {
                None => Map::new(),
                Some(Value::Object(vars)) => vars.clone(),
                Some(other) => {
                    return Err(err(format!("_meta.hostvars.{host} is {other}, not a map")))
                }
            },
            None => host_vars(&host)?,
        };
        check_vars(&vars).map_err(|e| err(format!("the host {host}: {e}")))?;
        inv.host_mut(&host).vars.extend(vars);
    }
    Ok(())
}

/// A host or group name: a string, or a number as Ansible takes one.
fn name_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON map with its keys in the order written (`serde_json`'s own
/// sorts them): the groups' order is the hosts' order.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ordered, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of groups")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                // A key given twice keeps its first place and its last
                // value, as Python's json builds a dict.
                let mut pairs: Vec<(String, Value)> = Vec::new();
                let mut at: std::collections::HashMap<String, usize> = Default::default();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    match at.get(&key) {
                        Some(&i) => pairs[i].1 = value,
                        None => {
                            at.insert(key.clone(), pairs.len());
                            pairs.push((key, value));
                        }
                    }
                }
                Ok(Ordered(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// What one run of the script printed on stdout, when it exits 0 within
/// the deadline and the bound. It runs in a process group of its own,
/// which is killed when the run ends (nothing it left behind survives),
/// when the deadline passes, and on Ctrl-C (the kit's handler), and dies
/// with this process.
fn output(
    path: &Path,
    args: &[&str],
    (deadline, time): (Instant, Duration),
) -> Result<Vec<u8>, InventoryError> {
    let shown = format!("`{} {}`", path.display(), args.join(" "));
    let err = |message: String| InventoryError::at(path, None, format!("{shown}: {message}"));
    let mut command = Command::new(program(path));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
    // the child when the thread that started it (this one, which waits for
    // it) ends.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| err(format!("cannot run the inventory script: {e}")))?;
    let stdout = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let read = out
                .take(MAX_SCRIPT_OUTPUT as u64 + 1)
                .read_to_end(&mut bytes);
            read.map(|_| bytes)
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = (&mut err).take(STDERR_SHOWN as u64).read_to_end(&mut bytes);
            // The rest is read and dropped: a chatty script must not block.
            let _ = std::io::copy(&mut err, &mut std::io::sink());
            bytes
        })
    });
    let ended = wait(&mut child, deadline);
    // What it left running (holding the pipes, perhaps) goes with it.
    // SAFETY: signals the process group this child leads.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let status = match ended {
        Ended::Exited(status) => status,
        Ended::Late => {
            return Err(err(format!(
                "did not finish within {} s (for all its runs) and was killed",
                time.as_secs()
            )))
        }
        Ended::Interrupted => return Err(err("interrupted (Ctrl-C): it was stopped".into())),
    };
    let bytes = stdout.and_then(|t| join_within(t, Duration::from_millis(500)));
    if let Some(Ok(bytes)) = &bytes {
        if bytes.len() > MAX_SCRIPT_OUTPUT {
            return Err(err(format!(
                "printed more than {} MiB, the most an inventory script's run may",
                MAX_SCRIPT_OUTPUT >> 20
            )));
        }
    }
    let said = stderr
        .and_then(|t| join_within(t, Duration::from_millis(500)))
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".into(),
        };
        return Err(err(match said.is_empty() {
            true => how,
            false => format!("{how}: {said}"),
        }));
    }
    match bytes {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(e)) => Err(err(format!("cannot read its output: {e}"))),
        None => Err(err("its output did not end when it exited".into())),
    }
}

/// The file named, never one that `PATH` finds under that name: a bare
/// name is `./name`.
fn program(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => path.to_owned(),
        _ => Path::new(".").join(path),
    }
}

/// How a run ended.
enum Ended {
    Exited(std::process::ExitStatus),
    /// Past the deadline: killed.
    Late,
    /// Ctrl-C (the kit's handler): killed.
    Interrupted,
}

/// Waits for `child` until `deadline` or Ctrl-C, killing it then.
fn wait(child: &mut Child, deadline: Instant) -> Ended {
    loop {
        let stop = match child.try_wait() {
            Ok(Some(status)) => return Ended::Exited(status),
            Ok(None) if chopsticks::interrupted() => Ended::Interrupted,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            _ => Ended::Late,
        };
        // SAFETY: signals the process group this child leads.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = child.kill();
        let _ = child.wait();
        return stop;
    }
}

/// The thread's result if it ends within `grace`.
fn join_within<T>(thread: std::thread::JoinHandle<T>, grace: Duration) -> Option<T> {
    let until = Instant::now() + grace;
    while !thread.is_finished() {
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    thread.join().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cs-script-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The example of Ansible's "Developing dynamic inventory" guide, with
    /// and without `_meta`.
    #[test]
    fn a_script_is_run_with_list_and_host() {
        let dir = temp("run");
        let list = r#"{
            "databases": {"hosts": ["host1.example.com", "host2.example.com"],
                          "vars": {"a": true}},
            "webservers": ["host2.example.com", "host3.example.com"],
            "atlanta": {"hosts": ["host1.example.com", "host4.example.com",
                                  "host5.example.com"],
                        "vars": {"b": false}, "children": ["marietta", "5points"]},
            "marietta": ["host6.example.com"],
            "5points": ["host7.example.com"]
        }"#;
        let with_meta = list.replacen(
            '{',
            r#"{"_meta": {"hostvars": {"host1.example.com": {"port": 8080}}},"#,
            1,
        );
        let meta = script(
            &dir,
            "meta.py",
            &format!("#!/bin/sh\n[ \"$1\" = --list ] || exit 3\ncat <<'EOF'\n{with_meta}\nEOF\n"),
        );
        let plain = script(
            &dir,
            "plain.sh",
            &format!(
                "#!/bin/sh\ncase $1 in --list) cat <<'EOF'\n{list}\nEOF\n;;\n\
                 --host) echo \"{{\\\"who\\\": \\\"$2\\\"}}\";;\nesac\n"
            ),
        );
        for path in [meta, plain] {
            assert!(is_script(&path));
            let inv = Inventory::load(&path).unwrap();
            let names: Vec<&str> = inv.hosts().map(|h| h.name.as_str()).collect();
            assert_eq!(names.len(), 7, "{names:?}");
            assert_eq!(names[0], "host1.example.com");
            assert_eq!(inv.group_hosts("atlanta").len(), 5);
            let (_, vars) = inv.resolve("host1.example.com").unwrap();
            assert_eq!(vars["a"], true);
            assert_eq!(vars["b"], false);
            if path.ends_with("meta.py") {
                assert_eq!(vars["port"], 8080);
            } else {
                assert_eq!(vars["who"], "host1.example.com");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_script_that_fails_hangs_or_prints_junk_is_an_error_naming_it() {
        let dir = temp("bad");
        for (name, body, says) in [
            ("fails", "#!/bin/sh\necho 'no cloud credentials' >&2\nexit 2\n", "exited with 2: no cloud credentials"),
            ("junk", "#!/bin/sh\necho 'hello'\n", "not the JSON of an inventory's --list"),
            ("list", "#!/bin/sh\necho '[1, 2]'\n", "a map of groups"),
            ("badhost", "#!/bin/sh\necho '{\"web\": [\"x;id\"]}'\n", "is not a host name"),
            ("badvar", "#!/bin/sh\necho '{\"web\": {\"hosts\": [\"w\"], \"vars\": {\"ansible_user\": \"-oX\"}}}'\n", "ansible_user"),
            ("nohost", "#!/bin/sh\n[ \"$1\" = --list ] && echo '{\"web\": [\"w\"]}' || echo nope\n", "`--host w` printed no JSON map"),
        ] {
            let path = script(&dir, name, body);
            let err = Inventory::load(&path).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(err.contains(says), "{name}: {err}");
        }
        let slow = script(
            &dir,
            "slow",
            "#!/bin/sh
sleep 30
",
        );
        let started = Instant::now();
        let err = run_within(&slow, &mut Inventory::new(), Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains("did not finish within 1 s"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let big = MAX_SCRIPT_OUTPUT + 1;
        let chatty = script(
            &dir,
            "chatty",
            &format!(
                "#!/bin/sh
yes | head -c {big}
"
            ),
        );
        let err = Inventory::load(&chatty).unwrap_err();
        assert!(err.to_string().contains("more than 64 MiB"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// What a script leaves running is stopped with it; much on stderr
    /// does not block it; a bare name is the file, not one on `PATH`.
    #[test]
    fn a_script_leaves_nothing_behind_and_may_say_much() {
        let dir = temp("behind");
        let pid_file = dir.join("pid");
        let leaves = script(
            &dir,
            "leaves",
            &format!(
                "#!/bin/sh\nsleep 1000 &\necho $! > {}\n\
                 head -c 200000 /dev/zero | tr '\\0' x >&2\necho '{{\"g\": [\"h\"]}}'\n",
                pid_file.display()
            ),
        );
        let inv = Inventory::load(&leaves).unwrap();
        assert_eq!(inv.group_hosts("g"), ["h"]);
        let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed at once; reaped by whoever inherited it, soon.
        let gone = (0..400).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            // SAFETY: signal 0 only asks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"));
            !alive || zombie
        });
        assert!(gone, "the script's background child {pid} still runs");
        assert_eq!(program(Path::new("inv.py")), Path::new("./inv.py"));
        assert_eq!(program(Path::new("dir/inv.py")), Path::new("dir/inv.py"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The JSON `ansible-inventory --list` prints, read from a file.
    #[test]
    fn the_json_of_ansible_inventory_list_is_read_from_a_file() {
        let dir = temp("json");
        let text = r#"{"_meta": {"hostvars": {"web1": {"http_port": 80}}},
            "all": {"children": ["ungrouped", "web"]},
            "ungrouped": {"hosts": ["lonely"]},
            "web": {"hosts": ["web1", "web2"], "vars": {"role": "web"}}}"#;
        assert!(is_list_json(text));
        let path = dir.join("inventory.json");
        std::fs::write(&path, text).unwrap();
        let inv = Inventory::load(&path).unwrap();
        let names: Vec<&str> = inv.hosts().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["lonely", "web1", "web2"]);
        assert_eq!(inv.group_hosts("ungrouped"), ["lonely"]);
        let (_, vars) = inv.resolve("web1").unwrap();
        assert_eq!(
            (vars["http_port"].clone(), vars["role"].clone()),
            (80.into(), "web".into())
        );
        // A YAML inventory written as JSON is not that shape.
        assert!(!is_list_json(r#"{"all": {"hosts": {"web1": {}}}}"#));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
