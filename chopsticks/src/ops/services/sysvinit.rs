//! sysvinit: the scripts in `/etc/init.d`, run through `service`, started
//! at boot by their `S` links in `/etc/rc2.d` to `/etc/rc5.d`, which
//! `update-rc.d` makes and turns off.

use std::path::Path;

use super::scripts::{self, Codes, Now, Scripts, INIT_D};
use super::{InitSystem, Service, Step, OP};
use crate::ops::tools::{one_of, tool};
use crate::ops::{OpError, Plan};

pub(super) struct SysVinit;

/// The runlevels of a multi-user boot, whose links say "enabled".
const RUNLEVELS: &[&str] = &["/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d"];

/// The most entries of a runlevel directory looked at.
const MAX_LINKS: usize = 100_000;

/// `status` by the LSB's exit codes.
const CODES: Codes = &[
    (0, Now::Running, "running"),
    (1, Now::Stopped, "dead (its pid file remains)"),
    (2, Now::Stopped, "dead (its lock file remains)"),
    (3, Now::Stopped, "stopped"),
];

/// Where `service` and `update-rc.d` come from.
const INSTALL: &str = "install them (init-system-helpers on Debian)";

impl InitSystem for SysVinit {
    fn looked_for(&self) -> &'static str {
        "sysvinit (/etc/init.d with update-rc.d or service, PID 1 not systemd)"
    }

    fn detect(&self) -> bool {
        let init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
        init.trim() != "systemd"
            && Path::new(INIT_D).is_dir()
            && (tool("update-rc.d").is_some() || tool("service").is_some())
    }

    fn plan(&self, spec: Service) -> Result<Plan, OpError> {
        let name = spec.name.clone();
        let rc = || one_of(OP, &name, &["update-rc.d"], INSTALL);
        scripts::plan(
            spec,
            Scripts {
                control: &|| one_of(OP, &name, &["service"], INSTALL),
                codes: CODES,
                enabled: enabled(&name),
                boot: &|enable, shown| match enable {
                    true => Ok(Step::run(shown, &rc()?, &[&name, "defaults"])
                        .then(&rc()?, &[&name, "enable"])),
                    false => Ok(Step::run(shown, &rc()?, &[&name, "disable"])),
                },
                advice,
            },
        )
    }
}

/// Whether `name` starts at boot: an `S` link (`S01name`) in one of the
/// [`RUNLEVELS`].
fn enabled(name: &str) -> bool {
    let started = |entry: &str| {
        entry.strip_prefix('S').is_some_and(|rest| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && &rest[digits..] == name
        })
    };
    RUNLEVELS.iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .take(MAX_LINKS)
                .flatten()
                .any(|e| started(&e.file_name().to_string_lossy()))
        })
    })
}

/// What to do when `service` or `update-rc.d` failed and said `said`.
fn advice(said: &str) -> &'static str {
    if said.contains("unrecognized service") || said.contains("unable to read") {
        "no such init script: install the package that provides it (ops::package) or check \
         the name"
    } else if said.contains("ermission denied") || said.contains("Operation not permitted") {
        "managing services needs root: connect as root or through sudo (TunnelBuilder::sudo)"
    } else {
        "see the script's output above and its log on the host"
    }
}
