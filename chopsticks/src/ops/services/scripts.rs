//! What the init systems of scripts in `/etc/init.d` (sysvinit, OpenRC)
//! share: the script, its status read from its exit code, whether it can
//! reload, and the actions that make a [`Service`] so.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use super::{shape_ready, Service, State, Step, OP, STATUS_TIME};
use crate::ops::process::Program;
use crate::ops::tools;
use crate::ops::{OpError, Plan};

/// Where the scripts are.
pub(super) const INIT_D: &str = "/etc/init.d";

/// The most of a script read to tell its actions and LSB header.
const MAX_SCRIPT: u64 = 1 << 20;

/// `status` by the LSB's exit codes (a script that is not openrc-run's).
const LSB_CODES: Codes = &[
    (0, Now::Running, "running"),
    (1, Now::Stopped, "dead (its pid file remains)"),
    (2, Now::Stopped, "dead (its lock file remains)"),
    (3, Now::Stopped, "stopped"),
];

/// `status` as openrc-run says it.
const OPENRC_CODES: Codes = &[
    (0, Now::Running, "started"),
    (3, Now::Stopped, "stopped"),
    (32, Now::Crashed, "crashed"),
];

/// Whether a service starts at boot now: in all the runlevels it should,
/// in some of them, or in none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Boot {
    Enabled,
    Partly,
    Disabled,
}

/// How a script's service runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Now {
    Running,
    Stopped,
    /// Marked started, but its daemon is gone (OpenRC's `crashed`): a
    /// start would do nothing, a restart runs it again.
    Crashed,
}

/// What a script's exit code for `status` means: the code, the state and
/// how a change names it.
pub(super) type Codes = &'static [(i32, Now, &'static str)];

/// An init system of scripts, as [`plan`] needs it.
pub(super) struct Scripts<'a> {
    /// The tool that runs a script's actions as `TOOL NAME ACTION`
    /// (`service`, `rc-service`).
    pub control: &'a dyn Fn() -> Result<String, OpError>,
    /// Whether the service of a script starts at boot now.
    pub boot_now: &'a dyn Fn(&Script) -> Boot,
    /// The step, named as given, that makes the service of a script start
    /// at boot (`true`) or not.
    pub boot: &'a dyn Fn(&Script, bool, String) -> Result<Step, OpError>,
    /// What to do when a tool failed, by what it said.
    pub advice: fn(&str) -> &'static str,
}

/// The plan for `spec` under the init system `init`: the script's state
/// from `TOOL NAME status`, then the [`actions`] that make it so.
///
/// # Errors
/// A script that cannot be read, is not executable or has no `status`, a
/// status that is none of its table (openrc-run's or the LSB's, by its
/// first line), a tool that is missing, or a reload the script cannot do.
pub(super) fn plan(spec: Service, init: Scripts<'_>) -> Result<Plan, OpError> {
    let name = spec.name.clone();
    let script = Script::read(&name)?;
    let (now, was) = match script.exists {
        true => {
            let argv = [(init.control)()?, name.clone(), "status".into()];
            let codes = match script.openrc_run {
                true => OPENRC_CODES,
                false => LSB_CODES,
            };
            status(&name, &argv, codes)?
        }
        false => (Now::Stopped, "stopped".into()),
    };
    let boot_now = (init.boot_now)(&script);
    let mut steps = Vec::new();
    for (action, shown) in actions(&spec, &script, (now, &was), boot_now)? {
        steps.push(match action {
            Action::Enable => (init.boot)(&script, true, shown)?,
            Action::Disable => (init.boot)(&script, false, shown)?,
            run => Step::run(shown, &(init.control)()?, &[&name, run.verb()]),
        });
    }
    let state = match boot_now {
        Boot::Enabled => format!("{was}, enabled"),
        Boot::Partly => format!("{was}, partly enabled"),
        Boot::Disabled => format!("{was}, disabled"),
    };
    let missing = script.missing();
    Ok(shape_ready(
        name,
        steps,
        &state,
        missing,
        init.advice,
        ready,
    ))
}

/// Whether the script of `name` is there for the apply step to run: not
/// if it is missing (its package was not installed, or ships only a
/// systemd unit), or cannot be used.
fn ready(name: &str) -> Result<(), OpError> {
    let script = Script::read(name)?;
    if script.exists {
        return Ok(());
    }
    let unit = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|dir| PathBuf::from(dir).join(format!("{name}.service")))
        .find(|unit| unit.is_file());
    let why = match unit {
        Some(unit) => format!(
            "no such init script {}: its package ships only a systemd unit ({}), and \
             systemd is not PID 1 here: run the host under systemd, or give the service \
             an init script",
            script.path.display(),
            unit.display()
        ),
        None => format!(
            "no such init script {}: install the package that provides it \
             (ops::package) or check the name",
            script.path.display()
        ),
    };
    Err(OpError::new(OP, name, why))
}

/// What a [`Service`] needs done to a script's service, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl Action {
    /// The script's own word for it (`start`), or the change's.
    fn verb(self) -> &'static str {
        match self {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
        }
    }
}

/// The script `/etc/init.d/NAME` as far as planning needs it.
pub(super) struct Script {
    pub path: PathBuf,
    /// Whether it is there (a file, or a link to one).
    pub exists: bool,
    /// Whether it is openrc-run's (its first line runs `openrc-run` or
    /// `runscript`), not an LSB script.
    pub openrc_run: bool,
    /// Whether it has an LSB header (`### BEGIN INIT INFO`).
    pub lsb_header: bool,
    /// The runlevels its LSB header starts it in (`Default-Start:`).
    pub default_start: Vec<String>,
    /// Whether it has a `reload` action (true when it is not there: what
    /// will be installed is not known).
    reloads: bool,
}

impl Script {
    /// The script of `name` as it is now.
    ///
    /// # Errors
    /// When it is there but cannot be read, is not executable, or (an LSB
    /// script) has no `status` action.
    fn read(name: &str) -> Result<Script, OpError> {
        let path = PathBuf::from(INIT_D).join(name);
        let meta = path.metadata().ok().filter(|m| m.is_file());
        let exists = meta.is_some();
        if let Some(meta) = meta.filter(|m| m.permissions().mode() & 0o111 == 0) {
            return Err(OpError::new(
                OP,
                name,
                format!(
                    "the script {} is not executable (mode {:o}), so the init system cannot \
                     run it: make it so (chmod 755) or reinstall the package that ships it",
                    path.display(),
                    meta.permissions().mode() & 0o7777
                ),
            ));
        }
        let mut text = Vec::new();
        if exists {
            std::fs::File::open(&path)
                .and_then(|f| f.take(MAX_SCRIPT).read_to_end(&mut text))
                .map_err(|e| {
                    OpError::new(
                        OP,
                        name,
                        format!(
                            "cannot read {}: {}",
                            path.display(),
                            crate::files::describe(&e)
                        ),
                    )
                })?;
        }
        let text = String::from_utf8_lossy(&text);
        let first = text.lines().next().unwrap_or_default();
        let openrc_run = first.starts_with("#!")
            && (first.contains("openrc-run") || first.contains("runscript"));
        // openrc-run gives every script its `status`.
        if exists && !openrc_run && !has_action(&text, "status") {
            return Err(OpError::new(
                OP,
                name,
                format!(
                    "the script {} has no status action, which ops::service reads the \
                     service's state from: give it one (as the LSB says: exit 0 running, 3 \
                     stopped) or use ops::command",
                    path.display()
                ),
            ));
        }
        let (lsb_header, default_start) = default_start(&text);
        Ok(Script {
            reloads: !exists || has_action(&text, "reload"),
            openrc_run,
            lsb_header,
            default_start,
            path,
            exists,
        })
    }

    /// How the missing script is named in a check-mode note.
    fn missing(&self) -> Option<String> {
        (!self.exists).then(|| format!("the script {}", self.path.display()))
    }
}

/// Whether a script has the action `action` (`reload`): a `case`
/// pattern that matches it (`reload)`, `reload|force-reload)`) or a
/// `reload()` function, or the action among an openrc-run script's
/// `extra_commands` or `extra_started_commands`.
fn has_action(text: &str, action: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        let listed = line.starts_with("extra_")
            && line.contains("commands=")
            && line
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
                .any(|w| w == action);
        let pattern = line.split_once(')').is_some_and(|(pattern, _)| {
            pattern
                .split('|')
                .any(|p| p.trim().trim_matches(['"', '\'', '(', ' ']) == action)
        });
        listed || pattern
    })
}

/// Whether a script has an LSB header, and the runlevels its
/// `Default-Start:` names (`2 3 4 5`, `S`).
fn default_start(text: &str) -> (bool, Vec<String>) {
    let mut lines = text.lines().map(str::trim);
    if !lines.any(|l| l == "### BEGIN INIT INFO") {
        return (false, Vec::new());
    }
    let levels = lines
        .take_while(|l| *l != "### END INIT INFO")
        .find_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("Default-Start:")
        })
        .map(|levels| levels.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    (true, levels)
}

/// Runs `argv`, a script's `status`, within [`STATUS_TIME`] and reads
/// its exit code by `codes`: the state and how a change names it.
///
/// # Errors
/// When it cannot be run, or exits with a code `codes` does not have.
fn status(name: &str, argv: &[String], codes: Codes) -> Result<(Now, String), OpError> {
    let shown = format!("`{}`", argv.join(" "));
    let out = Program {
        argv,
        env: &[("LC_ALL".into(), "C".into())],
        cwd: None,
        shown: &shown,
        timeout: Some(STATUS_TIME),
    }
    .output(OP)?;
    if format!("{}\n{}", out.stdout, out.stderr).contains("unrecognized service") {
        return Err(OpError::new(
            OP,
            name,
            format!(
                "{shown} does not know the service: {}; see the script {INIT_D}/{name} \
                 (executable, named as the service)",
                tools::tail(&out, 4)
            ),
        ));
    }
    if let Some((_, now, said)) = codes.iter().find(|(code, _, _)| *code == out.status) {
        return Ok((*now, (*said).to_owned()));
    }
    let known: Vec<String> = codes.iter().map(|(c, _, s)| format!("{c} {s}")).collect();
    Err(OpError::new(
        OP,
        name,
        format!(
            "{shown} exited with status {}, which is none of {}: {}; see the script \
             {INIT_D}/{name} on the host",
            out.status,
            known.join(", "),
            tools::tail(&out, 4)
        ),
    ))
}

/// What makes `spec` so for a service that is `now` (named `was` in the
/// change) and started at boot as `boot` says, its script as `script`
/// says: each action with how the change names it.
///
/// # Errors
/// When a running service whose script has no `reload` should be
/// reloaded.
fn actions(
    spec: &Service,
    script: &Script,
    (now, was): (Now, &str),
    boot: Boot,
) -> Result<Vec<(Action, String)>, OpError> {
    let mut actions = Vec::new();
    match (spec.enabled, boot) {
        (Some(true), Boot::Partly | Boot::Disabled) => {
            actions.push((Action::Enable, "enable".into()))
        }
        (Some(false), Boot::Enabled | Boot::Partly) => {
            actions.push((Action::Disable, "disable".into()))
        }
        _ => {}
    }
    let start = || (Action::Start, format!("start (was {was})"));
    let restart = || (Action::Restart, format!("restart (was {was})"));
    let step = match (spec.run, now) {
        (Some(State::Running), Now::Stopped) => Some(start()),
        (Some(State::Running), Now::Crashed) => Some(restart()),
        (Some(State::Stopped), Now::Running | Now::Crashed) => Some((Action::Stop, "stop".into())),
        (Some(State::Restarted), Now::Running) => Some((Action::Restart, "restart".into())),
        (Some(State::Reloaded), Now::Running) if !script.reloads => {
            return Err(OpError::new(
                OP,
                &spec.name,
                format!(
                    "the script {} has no reload action: restart the service instead \
                     (Service::restarted), or give the script one",
                    script.path.display()
                ),
            ))
        }
        (Some(State::Reloaded), Now::Running) => Some((Action::Reload, "reload".into())),
        (Some(State::Restarted | State::Reloaded), Now::Crashed) => Some(restart()),
        (Some(State::Restarted | State::Reloaded), Now::Stopped) => Some(start()),
        _ => None,
    };
    actions.extend(step);
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_actions_are_found_in_lsb_and_openrc_scripts() {
        let lsb = "case \"$1\" in\n  start)\n    ;;\n  reload|force-reload)\n    ;;\nesac\n";
        let has_reload = |text| has_action(text, "reload");
        assert!(has_reload(lsb));
        let quoted = "case $1 in\n 'reload')  kill -HUP $pid ;;\nesac\n";
        assert!(has_reload(quoted));
        let none = "case \"$1\" in\n  start|stop)\n ;;\n  force-reload)\n ;;\nesac\n";
        assert!(!has_reload(none));
        let openrc = "#!/sbin/openrc-run\nextra_started_commands=\"reload\"\nreload() {\n}\n";
        assert!(has_reload(openrc));
        let other = "#!/sbin/openrc-run\nextra_commands=\"checkconfig reloaded\"\n";
        assert!(!has_reload(other));
    }

    #[test]
    fn default_start_is_read_from_the_lsb_header_only() {
        let lsb = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: x\n# Default-Start:     2 3 4 5\n\
                   ### END INIT INFO\n";
        assert_eq!(
            default_start(lsb),
            (true, vec!["2".into(), "3".into(), "4".into(), "5".into()])
        );
        let early = "### BEGIN INIT INFO\n# Default-Start: S\n### END INIT INFO\n";
        assert_eq!(default_start(early), (true, vec!["S".to_owned()]));
        let after = "### BEGIN INIT INFO\n### END INIT INFO\n# Default-Start: 2\n";
        assert_eq!(default_start(after), (true, Vec::new()));
        assert_eq!(default_start("# Default-Start: 2\n"), (false, Vec::new()));
        assert!(has_action("case $1 in\n status) ;;\nesac\n", "status"));
        assert!(!has_action("case $1 in\n start|stop) ;;\nesac\n", "status"));
    }

    fn planned(spec: Service, now: Now, enabled: bool, reloads: bool) -> Vec<String> {
        let script = Script {
            path: PathBuf::from("/etc/init.d/x"),
            exists: true,
            openrc_run: false,
            lsb_header: true,
            default_start: Vec::new(),
            reloads,
        };
        let enabled = match enabled {
            true => Boot::Enabled,
            false => Boot::Disabled,
        };
        let was = format!("{now:?}").to_lowercase();
        match actions(&spec, &script, (now, &was), enabled) {
            Ok(a) => a.into_iter().map(|(_, s)| s).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn actions_follow_the_state_and_always_restart_or_reload() {
        let x = || Service::new("x");
        let none: Vec<String> = Vec::new();
        assert_eq!(
            planned(x().running().enabled(true), Now::Stopped, false, true),
            ["enable", "start (was stopped)"]
        );
        assert_eq!(
            planned(x().running().enabled(true), Now::Running, true, true),
            none
        );
        assert_eq!(
            planned(x().running(), Now::Crashed, true, true),
            ["restart (was crashed)"]
        );
        assert_eq!(
            planned(x().stopped().enabled(false), Now::Running, true, true),
            ["disable", "stop"]
        );
        assert_eq!(planned(x().stopped(), Now::Stopped, false, true), none);
        assert_eq!(
            planned(x().restarted(), Now::Running, true, true),
            ["restart"]
        );
        assert_eq!(
            planned(x().restarted(), Now::Stopped, true, true),
            ["start (was stopped)"]
        );
        assert_eq!(
            planned(x().reloaded(), Now::Running, true, true),
            ["reload"]
        );
        assert_eq!(
            planned(x().reloaded(), Now::Stopped, true, false),
            ["start (was stopped)"]
        );
        let refused = planned(x().reloaded(), Now::Running, true, false);
        assert!(refused[0].contains("has no reload action"), "{refused:?}");
    }
}
