//! OpenRC: the scripts in `/etc/init.d`, run through `rc-service`, started
//! at boot when they are in the `default` runlevel, which `rc-update`
//! changes; an LSB script's runlevels are those of its `Default-Start`,
//! changed through Debian's `update-rc.d` where it is there (it changes
//! OpenRC's runlevels and the script's links together).

use std::path::Path;

use super::scripts::{self, Boot, Script, Scripts};
use super::{InitSystem, Service, Step, OP};
use crate::ops::tools::{one_of, tool};
use crate::ops::{OpError, Plan};

pub(super) struct OpenRc;

/// What OpenRC writes once it has booted (as PID 1 or not).
const SOFTLEVEL: &str = "/run/openrc/softlevel";

/// The runlevel whose services start at boot.
const RUNLEVEL: &str = "default";

/// Where `rc-service` and `rc-update` come from.
const INSTALL: &str = "install OpenRC";

impl InitSystem for OpenRc {
    fn looked_for(&self) -> &'static str {
        "OpenRC (/run/openrc/softlevel)"
    }

    fn detect(&self) -> bool {
        Path::new(SOFTLEVEL).is_file()
    }

    fn plan(&self, spec: Service) -> Result<Plan, OpError> {
        let name = spec.name.clone();
        scripts::plan(
            spec,
            Scripts {
                control: &|| one_of(OP, &name, &["rc-service"], INSTALL),
                boot_now: &|script| enabled(&name, script),
                boot: &|script, enable, shown| {
                    if let Some(update_rc_d) = lsb(script) {
                        return super::sysvinit::boot(&update_rc_d, &name, script, enable, shown);
                    }
                    let verb = if enable { "add" } else { "del" };
                    let rc_update = one_of(OP, &name, &["rc-update"], INSTALL)?;
                    Ok(Step::run(shown, &rc_update, &[verb, &name, RUNLEVEL]))
                },
                advice,
            },
        )
    }
}

/// `update-rc.d`, for an LSB script (one with `Default-Start` runlevels,
/// not openrc-run's) on a host that has it.
fn lsb(script: &Script) -> Option<String> {
    let lsb = !script.openrc_run && !script.default_start.is_empty();
    lsb.then(|| tool("update-rc.d"))
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether `name` starts at boot: in the `default` runlevel, or for an
/// [`lsb`] script in each OpenRC runlevel of its `Default-Start` as
/// `update-rc.d` maps them (`S` sysinit, `1` recovery, `2` to `5`
/// default), some, or none.
fn enabled(name: &str, script: &Script) -> Boot {
    let levels: Vec<&str> = match lsb(script) {
        None => vec![RUNLEVEL],
        Some(_) => {
            let mut levels: Vec<&str> = script
                .default_start
                .iter()
                .filter_map(|l| match l.as_str() {
                    "S" => Some("sysinit"),
                    "1" => Some("recovery"),
                    "2" | "3" | "4" | "5" => Some(RUNLEVEL),
                    _ => None,
                })
                .collect();
            levels.dedup();
            levels
        }
    };
    let root = Path::new("/etc/runlevels");
    let on = levels
        .iter()
        .filter(|l| root.join(l).join(name).symlink_metadata().is_ok())
        .count();
    match on {
        0 => Boot::Disabled,
        _ if on == levels.len() => Boot::Enabled,
        _ => Boot::Partly,
    }
}

/// What to do when `rc-service` or `rc-update` failed and said `said`.
fn advice(said: &str) -> &'static str {
    if said.contains("does not exist") {
        "no such init script: install the package that provides it (ops::package) or check \
         the name"
    } else if said.contains("superuser") || said.contains("ermission denied") {
        "managing services needs root: connect as root or through sudo (TunnelBuilder::sudo)"
    } else {
        "see its status (`rc-service` with `status`) and its log on the host"
    }
}
