//! systemd: units planned from their state as `systemctl show` reports
//! it, changed through `systemctl`.

use super::{shape, InitSystem, Service, State, Step, OP};
use crate::facts::{self, Fact};
use crate::ops::tools::one_of;
use crate::ops::{OpError, Plan};

pub(super) struct Systemd;

impl InitSystem for Systemd {
    fn looked_for(&self) -> &'static str {
        "systemd (/run/systemd/system)"
    }

    fn detect(&self) -> bool {
        facts::systemd_runs()
    }

    fn plan(&self, spec: Service) -> Result<Plan, OpError> {
        let Service { name, run, enabled } = spec;
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
        let ctl = |shown: String, verb: &str| Step::run(shown, &systemctl, &[verb, "--", &name]);
        let active = matches!(now.active.as_str(), "active" | "activating" | "reloading");
        let mut steps = Vec::new();
        if now.need_daemon_reload {
            steps.push(Step::run("daemon-reload", &systemctl, &["daemon-reload"]));
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
            (Some(true), _) => steps.push(ctl("enable".into(), "enable")),
            (Some(false), "enabled" | "enabled-runtime") => {
                steps.push(ctl("disable".into(), "disable"))
            }
            _ => {}
        }
        let was = format!("was {}", now.active);
        match run {
            Some(State::Running) if !active => steps.push(ctl(format!("start ({was})"), "start")),
            Some(State::Stopped) if active || now.active == "deactivating" => {
                steps.push(ctl("stop".into(), "stop"))
            }
            Some(State::Restarted) if active => steps.push(ctl("restart".into(), "restart")),
            Some(State::Reloaded) if active => steps.push(ctl("reload".into(), "reload")),
            Some(State::Restarted | State::Reloaded) => {
                steps.push(ctl(format!("start ({was})"), "start"))
            }
            _ => {}
        }
        let boot = match now.enabled.as_str() {
            "" => String::new(),
            e => format!(", {e}"),
        };
        let state = format!("{} ({}){boot}", now.active, now.sub);
        let missing = (!now.loaded).then(|| format!("the unit {name}"));
        Ok(shape(name, steps, &state, missing, advice))
    }
}

/// What to do when `systemctl` failed and said `said`.
fn advice(said: &str) -> &'static str {
    if said.contains("not found") {
        "no such unit: install the package that provides it (ops::package) or check the name"
    } else if said.contains("Access denied") || said.contains("authentication required") {
        "managing units needs root: connect as root or through sudo (TunnelBuilder::sudo)"
    } else {
        "see `systemctl status` and `journalctl -u` for the unit on the host"
    }
}
