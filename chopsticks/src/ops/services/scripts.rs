//! What the init systems of scripts in `/etc/init.d` (sysvinit, OpenRC)
//! share: the script, its status read from its exit code, whether it can
//! reload, and the actions that make a [`Service`] so.

use std::io::Read as _;
use std::path::PathBuf;

use super::{shape, Service, State, Step, OP, STATUS_TIME};
use crate::ops::process::Program;
use crate::ops::tools;
use crate::ops::{OpError, Plan};

/// Where the scripts are.
pub(super) const INIT_D: &str = "/etc/init.d";

/// The most of a script read to tell whether it has a `reload` action.
const MAX_SCRIPT: u64 = 1 << 20;

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
    /// What the exit codes of `status` mean.
    pub codes: Codes,
    /// Whether the service starts at boot now.
    pub enabled: bool,
    /// The step, named as given, that makes it start at boot (`true`) or
    /// not.
    pub boot: &'a dyn Fn(bool, String) -> Result<Step, OpError>,
    /// What to do when a tool failed, by what it said.
    pub advice: fn(&str) -> &'static str,
}

/// The plan for `spec` under the init system `init`: the script's state
/// from `TOOL NAME status`, then the [`actions`] that make it so.
///
/// # Errors
/// A script that cannot be read, a status none of `init.codes`, a tool
/// that is missing, or a reload the script cannot do.
pub(super) fn plan(spec: Service, init: Scripts<'_>) -> Result<Plan, OpError> {
    let name = spec.name.clone();
    let script = Script::read(&name)?;
    let (now, was) = match script.exists {
        true => {
            let argv = [(init.control)()?, name.clone(), "status".into()];
            status(&name, &argv, init.codes)?
        }
        false => (Now::Stopped, "stopped".into()),
    };
    let mut steps = Vec::new();
    for (action, shown) in actions(&spec, &script, (now, &was), init.enabled)? {
        steps.push(match action {
            Action::Enable => (init.boot)(true, shown)?,
            Action::Disable => (init.boot)(false, shown)?,
            run => Step::run(shown, &(init.control)()?, &[&name, run.verb()]),
        });
    }
    let state = match init.enabled {
        true => format!("{was}, enabled"),
        false => format!("{was}, disabled"),
    };
    Ok(shape(name, steps, &state, script.missing(), init.advice))
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
struct Script {
    path: PathBuf,
    /// Whether it is there (a file, or a link to one).
    exists: bool,
    /// Whether it has a `reload` action (true when it is not there: what
    /// will be installed is not known).
    reloads: bool,
}

impl Script {
    /// The script of `name` as it is now.
    ///
    /// # Errors
    /// When it is there but cannot be read.
    fn read(name: &str) -> Result<Script, OpError> {
        let path = PathBuf::from(INIT_D).join(name);
        let exists = path.metadata().is_ok_and(|m| m.is_file());
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
        Ok(Script {
            reloads: !exists || has_reload(&String::from_utf8_lossy(&text)),
            path,
            exists,
        })
    }

    /// How the missing script is named in a check-mode note.
    fn missing(&self) -> Option<String> {
        (!self.exists).then(|| format!("the script {}", self.path.display()))
    }
}

/// Whether a script has a `reload` action: a `case` pattern that matches
/// it (`reload)`, `reload|force-reload)`) or a `reload()` function, or
/// `reload` among an openrc-run script's `extra_commands` or
/// `extra_started_commands`.
fn has_reload(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        let listed = line.starts_with("extra_")
            && line.contains("commands=")
            && line
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
                .any(|w| w == "reload");
        let pattern = line.split_once(')').is_some_and(|(pattern, _)| {
            pattern
                .split('|')
                .any(|p| p.trim().trim_matches(['"', '\'', '(', ' ']) == "reload")
        });
        listed || pattern
    })
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
/// change) and `enabled` or not, its script as `script` says: each action
/// with how the change names it.
///
/// # Errors
/// When a running service whose script has no `reload` should be
/// reloaded.
fn actions(
    spec: &Service,
    script: &Script,
    (now, was): (Now, &str),
    enabled: bool,
) -> Result<Vec<(Action, String)>, OpError> {
    let mut actions = Vec::new();
    match (spec.enabled, enabled) {
        (Some(true), false) => actions.push((Action::Enable, "enable".into())),
        (Some(false), true) => actions.push((Action::Disable, "disable".into())),
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

    fn planned(spec: Service, now: Now, enabled: bool, reloads: bool) -> Vec<String> {
        let script = Script {
            path: PathBuf::from("/etc/init.d/x"),
            exists: true,
            reloads,
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
