//! [`service`]: a systemd unit running or stopped, enabled or not,
//! through `systemctl`, planned from the unit's state as systemd reports it.

use serde::{Deserialize, Serialize};

use super::tools::{self, one_of};
use super::{Change, Mode, OpError, Plan, Writer};
use crate::facts::{self, Fact};
use crate::remote;

const OP: &str = "ops::service";

/// What the unit should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Run {
    Running,
    Stopped,
    Restarted,
    Reloaded,
}

/// A systemd unit: running or stopped (or restarted, or reloaded, which
/// always count as a change), enabled at boot or not.
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
/// A unit file that changed on disk (`NeedDaemonReload`) is picked up
/// first with `systemctl daemon-reload`. In [`Mode::Check`] a unit that
/// does not exist yet (its package is installed by an earlier step of the
/// same run) is planned as that step would leave it, with a note: apply
/// fails if it is still missing then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    name: String,
    run: Option<Run>,
    enabled: Option<bool>,
}

impl Service {
    /// The unit `name` (`nginx` means `nginx.service`), left as it is
    /// until a method says otherwise.
    pub fn new(name: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            run: None,
            enabled: None,
        }
    }

    /// Running (started if it is not).
    pub fn running(mut self) -> Service {
        self.run = Some(Run::Running);
        self
    }

    /// Stopped (stopped if it runs).
    pub fn stopped(mut self) -> Service {
        self.run = Some(Run::Stopped);
        self
    }

    /// Restarted, or started if it is not running: always a change.
    pub fn restarted(mut self) -> Service {
        self.run = Some(Run::Restarted);
        self
    }

    /// Reloaded (`systemctl reload`), or started if it is not running:
    /// always a change.
    pub fn reloaded(mut self) -> Service {
        self.run = Some(Run::Reloaded);
        self
    }

    /// Started at boot, or not.
    pub fn enabled(mut self, enabled: bool) -> Service {
        self.enabled = Some(enabled);
        self
    }

    /// What making the unit so would change.
    ///
    /// # Errors
    /// When systemd does not run this host, the name is not a unit name,
    /// or the unit is masked and should be enabled.
    pub fn plan(self) -> Result<Plan, OpError> {
        let Service { name, run, enabled } = self;
        let valid = !name.is_empty()
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":_.@\\-".contains(c));
        if !valid {
            return Err(OpError::new(
                OP,
                &name,
                "not a unit name: letters, digits and : _ . @ \\ - only, not starting with -",
            ));
        }
        let now = match facts::service(name.clone()) {
            Ok(Fact::Known(now)) => now,
            Ok(Fact::NotAvailable(why)) => {
                return Err(OpError::new(
                    OP,
                    &name,
                    format!(
                        "{why}: ops::service manages systemd units; for another init \
                         system use ops::command"
                    ),
                ))
            }
            Err(e) => return Err(OpError::new(OP, &name, e.to_string())),
        };
        let systemctl = one_of(OP, &name, &["systemctl"], "install systemd")?;
        let active = matches!(now.active.as_str(), "active" | "activating" | "reloading");
        let mut steps: Vec<(String, Vec<&str>)> = Vec::new();
        if now.need_daemon_reload {
            steps.push(("daemon-reload".into(), vec!["daemon-reload"]));
        }
        match (enabled, now.enabled.as_str()) {
            (Some(true), "masked" | "masked-runtime") => {
                return Err(OpError::new(
                    OP,
                    &name,
                    "the unit is masked and cannot be enabled: unmask it first \
                     (`systemctl unmask`), e.g. with ops::command",
                ))
            }
            (
                Some(true),
                "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated"
                | "transient",
            ) => {}
            (Some(true), _) => steps.push(("enable".into(), vec!["enable"])),
            (Some(false), "enabled" | "enabled-runtime") => {
                steps.push(("disable".into(), vec!["disable"]))
            }
            _ => {}
        }
        let was = format!("was {}", now.active);
        match run {
            Some(Run::Running) if !active => steps.push((format!("start ({was})"), vec!["start"])),
            Some(Run::Stopped) if active || now.active == "deactivating" => {
                steps.push(("stop".into(), vec!["stop"]))
            }
            Some(Run::Restarted) if active => steps.push(("restart".into(), vec!["restart"])),
            Some(Run::Reloaded) if active => steps.push(("reload".into(), vec!["reload"])),
            Some(Run::Restarted | Run::Reloaded) => {
                steps.push((format!("start ({was})"), vec!["start"]))
            }
            _ => {}
        }
        if steps.is_empty() {
            let boot = match now.enabled.as_str() {
                "" => String::new(),
                e => format!(", {e}"),
            };
            return Ok(Plan::unchanged(format!(
                "service {name}: {} ({}){boot}",
                now.active, now.sub
            )));
        }
        let shown: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
        let needs = match now.loaded {
            true => String::new(),
            false => format!(
                "; needs the unit {name}, which is not there now and must exist by then \
                 (ops::package)"
            ),
        };
        let summary = format!("service {name}: {}{needs}", shown.join(", "));
        let argvs: Vec<Vec<String>> = steps
            .into_iter()
            .map(|(_, args)| {
                let mut argv = vec![systemctl.clone()];
                argv.extend(args.into_iter().map(str::to_owned));
                if argv[1] != "daemon-reload" {
                    argv.extend(["--".to_owned(), name.clone()]);
                }
                argv
            })
            .collect();
        Ok(Plan::change(summary, None, move |w| apply(w, &name, argvs)))
    }
}

/// Runs the planned `systemctl` calls in order.
fn apply(w: &Writer, name: &str, argvs: Vec<Vec<String>>) -> Result<(), OpError> {
    for argv in argvs {
        // English messages: the advice is read from them.
        let out = w.run(&argv, &[("LC_ALL".into(), "C".into())], None)?;
        if out.status == 0 {
            continue;
        }
        let said = format!("{}\n{}", out.stdout, out.stderr);
        let advice = if said.contains("not found") {
            "no such unit: install the package that provides it (ops::package) or check the name"
        } else if said.contains("Access denied") || said.contains("authentication required") {
            "managing units needs root: connect as root or through sudo (TunnelBuilder::sudo)"
        } else {
            "see `systemctl status` and `journalctl -u` for the unit on the host"
        };
        return Err(OpError::new(
            OP,
            name,
            format!(
                "`{}` exited with status {}: {}; {advice}",
                argv.join(" "),
                out.status,
                tools::tail(&out, 4)
            ),
        ));
    }
    Ok(())
}

/// Makes a systemd unit run (or not) and start at boot (or not) as
/// [`Service`] says.
///
/// # Errors
/// [`OpError`] naming the unit: systemd does not run the host, the unit is
/// missing or masked, or `systemctl` failed (quoted).
#[remote]
pub fn service(spec: Service, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}
