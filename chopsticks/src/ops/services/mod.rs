//! [`service`]: a service running or stopped, enabled at boot or not,
//! through the host's init system, planned from the state it reports.
//!
//! Each init system is a file of its own behind [`InitSystem`]: how to
//! tell that it runs a host, and how to plan a [`Service`] there. A new one
//! is a new file and a line in [`INIT_SYSTEMS`]. What they share: the
//! [`Step`]s a plan takes and how its [`Change`] says them ([`shape`]);
//! the init systems of scripts (sysvinit, OpenRC) also share how they
//! decide ([`scripts`]).

mod openrc;
mod scripts;
mod systemd;
mod sysvinit;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::Program;
use super::tools;
use super::{Change, Mode, OpError, Plan, Writer};
use crate::remote;

const OP: &str = "ops::service";

/// How long a tool that only reports (a status) may take.
const STATUS_TIME: Duration = Duration::from_secs(30);

/// How long a change may take: a start or a stop waits for the daemon.
const CHANGE_TIME: Duration = Duration::from_secs(300);

/// The init systems this operation knows, in the order a host is asked
/// for them.
static INIT_SYSTEMS: &[&dyn InitSystem] =
    &[&systemd::Systemd, &openrc::OpenRc, &sysvinit::SysVinit];

/// An init system: whether it runs this host, and what making a service
/// as a [`Service`] says would change there.
trait InitSystem: Sync {
    /// Its name and the sign of it that [`detect`](InitSystem::detect)
    /// looks for, as the error for a host without any says it.
    fn looked_for(&self) -> &'static str;

    /// Whether it manages this host's services.
    fn detect(&self) -> bool;

    /// The plan for `spec`, whose name is valid.
    fn plan(&self, spec: Service) -> Result<Plan, OpError>;
}

/// One step of a plan: how its change names it (`enable`, `start (was
/// stopped)`), and the commands that take it, in order.
struct Step {
    shown: String,
    argvs: Vec<Vec<String>>,
}

impl Step {
    /// The step `shown`, taken by running `tool` with `args`.
    fn run(shown: impl Into<String>, tool: &str, args: &[&str]) -> Step {
        let argv = std::iter::once(tool)
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        Step {
            shown: shown.into(),
            argvs: vec![argv],
        }
    }

    /// Then `tool` with `args` too.
    fn then(mut self, tool: &str, args: &[&str]) -> Step {
        self.argvs.extend(Step::run("", tool, args).argvs);
        self
    }
}

/// The plan that takes `steps` for the service `name`, or changes
/// nothing and says it is `now`. `missing` names what the steps need that
/// is not there yet (a unit, a script): check mode plans as an earlier
/// step that installs it would leave it, and says so. A tool that fails
/// is quoted, with `advice(what it said)`.
fn shape(
    name: String,
    steps: Vec<Step>,
    now: &str,
    missing: Option<String>,
    advice: fn(&str) -> &'static str,
) -> Plan {
    shape_ready(name, steps, now, missing, advice, |_| Ok(()))
}

/// [`shape`], whose apply step first asks `ready(name)` whether what the
/// steps need is there, and fails as it says if not.
fn shape_ready(
    name: String,
    steps: Vec<Step>,
    now: &str,
    missing: Option<String>,
    advice: fn(&str) -> &'static str,
    ready: fn(&str) -> Result<(), OpError>,
) -> Plan {
    if steps.is_empty() {
        return Plan::unchanged(format!("service {name}: {now}"));
    }
    let shown: Vec<&str> = steps.iter().map(|s| s.shown.as_str()).collect();
    let needs = match missing {
        None => String::new(),
        Some(what) => {
            format!("; needs {what}, which is not there now and must exist by then (ops::package)")
        }
    };
    let summary = format!("service {name}: {}{needs}", shown.join(", "));
    Plan::change(summary, None, move |w| {
        ready(&name)?;
        for argv in steps.into_iter().flat_map(|s| s.argvs) {
            run_step(w, &name, &argv, advice)?;
        }
        Ok(())
    })
}

/// Runs one command of a planned step within [`CHANGE_TIME`].
fn run_step(
    w: &Writer,
    name: &str,
    argv: &[String],
    advice: fn(&str) -> &'static str,
) -> Result<(), OpError> {
    let shown = format!("`{}`", argv.join(" "));
    let program = Program {
        argv,
        // English messages: the advice is read from them.
        env: &[("LC_ALL".into(), "C".into())],
        cwd: None,
        shown: &shown,
        timeout: Some(CHANGE_TIME),
    };
    let out = w.exec(program, OP)?;
    if out.status == 0 {
        return Ok(());
    }
    let said = format!("{}\n{}", out.stdout, out.stderr);
    Err(OpError::new(
        OP,
        name,
        format!(
            "{shown} exited with status {}: {}; {}",
            out.status,
            tools::tail(&out, 4),
            advice(&said)
        ),
    ))
}

/// What the unit should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Running,
    Stopped,
    Restarted,
    Reloaded,
}

/// A service: running or stopped (or restarted, or reloaded, which
/// always count as a change), enabled at boot or not, through the init
/// system that runs the host: systemd, OpenRC or sysvinit, in that order
/// of detection.
///
/// ```
/// use chopsticks::ops::Service;
///
/// let web = Service::new("nginx").running().enabled(true);
/// let bounce = Service::new("nginx").restarted(); // e.g. after its config changed
/// let off = Service::new("telnet.socket").stopped().enabled(false);
/// # let _ = (web, bounce, off);
/// ```
///
/// - **systemd** (PID 1 is systemd: `/run/systemd/system` exists): the
///   unit's state as `systemctl show` reports it, changed with
///   `systemctl`. A unit file that changed on disk (`NeedDaemonReload`)
///   is picked up first with `systemctl daemon-reload`; a masked unit is
///   not enabled.
/// - **OpenRC** (it has booted: `/run/openrc/softlevel` exists): the
///   script `/etc/init.d/NAME`, its state from `rc-service NAME status`,
///   changed with `rc-service`; for an openrc-run script enabled means in
///   the `default` runlevel (`/etc/runlevels/default/NAME`), changed with
///   `rc-update add|del NAME default`; an LSB script (a header with
///   `Default-Start`) is enabled in the runlevels those map to, changed
///   with `update-rc.d` as under sysvinit where it is there.
/// - **sysvinit** (PID 1 is not systemd, `/etc/init.d` and `update-rc.d`
///   or `service` are there): the script `/etc/init.d/NAME`, its state
///   from `service NAME status`, changed with `service`; enabled means an
///   `S` link in each runlevel of its LSB header's `Default-Start`
///   (`/etc/rc2.d`, `/etc/rcS.d` for `S`), made with `update-rc.d NAME
///   defaults` and `update-rc.d NAME enable`, turned off with
///   `update-rc.d NAME disable LEVELS`; a script without `Default-Start`
///   is not enabled (an error).
///
/// A script must be executable and have a `status` action (openrc-run
/// gives every script one). Its status is read by its exit code: an
/// openrc-run script's (first line) as OpenRC says, 0 started, 3
/// stopped, 32 crashed (restarted to run again); any other as the LSB
/// says, 0 running, 3 stopped, 1 or 2 dead (stopped; its pid or lock file
/// remains); any other code, or `unrecognized service`, is an error
/// quoting what it said. [`reloaded`](Service::reloaded) needs a script
/// that has a `reload` action. In [`Mode::Check`] a unit or script that
/// does not exist yet (its package is installed by an earlier step of the
/// same run) is planned as that step would leave it, with a note: apply
/// fails first if it is still missing then (saying so when the package
/// ships only a systemd unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    name: String,
    run: Option<State>,
    enabled: Option<bool>,
}

impl Service {
    /// The service `name`: the unit `name` under systemd (`nginx` means
    /// `nginx.service`), the script `/etc/init.d/name` under OpenRC and
    /// sysvinit; left as it is until a method says otherwise.
    pub fn new(name: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            run: None,
            enabled: None,
        }
    }

    /// Running (started if it is not).
    pub fn running(mut self) -> Service {
        self.run = Some(State::Running);
        self
    }

    /// Stopped (stopped if it runs).
    pub fn stopped(mut self) -> Service {
        self.run = Some(State::Stopped);
        self
    }

    /// Restarted, or started if it is not running: always a change.
    pub fn restarted(mut self) -> Service {
        self.run = Some(State::Restarted);
        self
    }

    /// Reloaded (`systemctl reload`, the script's `reload`), or started if
    /// it is not running: always a change. A script without a `reload`
    /// action is an error.
    pub fn reloaded(mut self) -> Service {
        self.run = Some(State::Reloaded);
        self
    }

    /// Started at boot, or not.
    pub fn enabled(mut self, enabled: bool) -> Service {
        self.enabled = Some(enabled);
        self
    }

    /// What making the service so would change.
    ///
    /// # Errors
    /// When no init system this operation knows runs the host, the name is
    /// not a unit name, the unit is masked and should be enabled, a
    /// script's status is neither running nor stopped, or a running
    /// script without `reload` should be reloaded.
    pub fn plan(self) -> Result<Plan, OpError> {
        let valid = !self.name.is_empty()
            && !self.name.starts_with('-')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":_.@\\-".contains(c));
        if !valid {
            return Err(OpError::new(
                OP,
                &self.name,
                "not a unit name: letters, digits and : _ . @ \\ - only, not starting with -",
            ));
        }
        match INIT_SYSTEMS.iter().find(|i| i.detect()) {
            Some(init) => init.plan(self),
            None => {
                let init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
                let looked: Vec<&str> = INIT_SYSTEMS.iter().map(|i| i.looked_for()).collect();
                Err(OpError::new(
                    OP,
                    &self.name,
                    format!(
                        "no init system ops::service knows runs this host (PID 1 is {}); \
                         looked for {}: for another init system use ops::command",
                        init.trim(),
                        looked.join(", ")
                    ),
                ))
            }
        }
    }
}

/// Makes a service run (or not) and start at boot (or not) as [`Service`]
/// says, through systemd, OpenRC or sysvinit.
///
/// # Errors
/// [`OpError`] naming the service: no init system this operation knows
/// runs the host, the unit or script is missing, the unit is masked, the
/// script cannot reload, or the init system's tool failed (quoted).
#[remote]
pub fn service(spec: Service, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}
