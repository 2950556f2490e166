//! OpenRC: the scripts in `/etc/init.d`, run through `rc-service`, started
//! at boot when they are in the `default` runlevel, which `rc-update`
//! changes.

use std::path::Path;

use super::scripts::{self, Codes, Now, Scripts};
use super::{InitSystem, Service, Step, OP};
use crate::ops::tools::one_of;
use crate::ops::{OpError, Plan};

pub(super) struct OpenRc;

/// What OpenRC writes once it has booted (as PID 1 or not).
const SOFTLEVEL: &str = "/run/openrc/softlevel";

/// The runlevel whose services start at boot.
const RUNLEVEL: &str = "default";

/// `status` as openrc-run says it.
const CODES: Codes = &[
    (0, Now::Running, "started"),
    (3, Now::Stopped, "stopped"),
    (32, Now::Crashed, "crashed"),
];

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
        let in_runlevel = Path::new("/etc/runlevels").join(RUNLEVEL).join(&name);
        scripts::plan(
            spec,
            Scripts {
                control: &|| one_of(OP, &name, &["rc-service"], INSTALL),
                codes: CODES,
                enabled: in_runlevel.symlink_metadata().is_ok(),
                boot: &|enable, shown| {
                    let verb = if enable { "add" } else { "del" };
                    let rc_update = one_of(OP, &name, &["rc-update"], INSTALL)?;
                    Ok(Step::run(shown, &rc_update, &[verb, &name, RUNLEVEL]))
                },
                advice,
            },
        )
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
