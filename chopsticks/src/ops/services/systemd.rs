//! systemd: units planned from their state as `systemctl show` reports
//! it, changed through `systemctl`.

use super::{InitSystem, Service, State, OP};
use crate::facts::{self, Fact};
use crate::ops::tools::{self, one_of};
use crate::ops::{OpError, Plan, Writer};

pub(super) struct Systemd;

impl InitSystem for Systemd {
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
            Some(State::Running) if !active => {
                steps.push((format!("start ({was})"), vec!["start"]))
            }
            Some(State::Stopped) if active || now.active == "deactivating" => {
                steps.push(("stop".into(), vec!["stop"]))
            }
            Some(State::Restarted) if active => steps.push(("restart".into(), vec!["restart"])),
            Some(State::Reloaded) if active => steps.push(("reload".into(), vec!["reload"])),
            Some(State::Restarted | State::Reloaded) => {
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
