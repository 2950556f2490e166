//! sysvinit: the scripts in `/etc/init.d`, run through `service`, started
//! at boot by their `S` links in the runlevels of their LSB header's
//! `Default-Start` (`/etc/rc2.d` for `2`, `/etc/rcS.d` for `S`), which
//! `update-rc.d` makes and turns off.

use std::path::Path;

use super::scripts::{self, Boot, Script, Scripts, INIT_D};
use super::{InitSystem, Service, Step, OP};
use crate::ops::tools::{one_of, tool};
use crate::ops::{OpError, Plan};

pub(super) struct SysVinit;

/// The most entries of a runlevel directory looked at.
const MAX_LINKS: usize = 100_000;

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
                boot_now: &|script| enabled(&name, script),
                boot: &|script, enable, shown| boot(&rc()?, &name, script, enable, shown),
                advice,
            },
        )
    }
}

/// The step, named `shown`, that makes the service `name` of `script`
/// start at boot (`enable`) or not through `update-rc.d` (the tool
/// `rc`): in the runlevels of its `Default-Start`, which it must have.
/// OpenRC uses it too for LSB scripts, as Debian's `update-rc.d` changes
/// OpenRC's runlevels along with the links.
///
/// # Errors
/// When the script has no `Default-Start` runlevels and should start at
/// boot.
pub(super) fn boot(
    rc: &str,
    name: &str,
    script: &Script,
    enable: bool,
    shown: String,
) -> Result<Step, OpError> {
    if script.exists && script.default_start.is_empty() {
        let lacks = match script.lsb_header {
            true => "an LSB header without Default-Start runlevels",
            false => "no LSB header",
        };
        return Err(OpError::new(
            OP,
            name,
            format!(
                "the script {} has {lacks}, so update-rc.d does not know when to start it: \
                 give it a header (### BEGIN INIT INFO with Default-Start: 2 3 4 5)",
                script.path.display()
            ),
        ));
    }
    let levels: Vec<&str> = script.default_start.iter().map(String::as_str).collect();
    Ok(match enable {
        true => Step::run(shown, rc, &[name, "defaults"]).then(rc, &[name, "enable"]),
        false => Step::run(shown, rc, &[&[name, "disable"], &levels[..]].concat()),
    })
}

/// Whether `name` starts at boot: an `S` link (`S01name`) in each
/// runlevel of its script's `Default-Start` (`/etc/rcS.d` for `S`), in
/// some, or in none (or in none of `/etc/rc2.d` to `/etc/rc5.d` for a
/// script without one).
fn enabled(name: &str, script: &Script) -> Boot {
    let started = |entry: &str| {
        entry.strip_prefix('S').is_some_and(|rest| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && &rest[digits..] == name
        })
    };
    let linked = |level: &str| {
        std::fs::read_dir(format!("/etc/rc{level}.d")).is_ok_and(|entries| {
            entries
                .take(MAX_LINKS)
                .flatten()
                .any(|e| started(&e.file_name().to_string_lossy()))
        })
    };
    let levels: Vec<&str> = match script.default_start.is_empty() {
        true => vec!["2", "3", "4", "5"],
        false => script.default_start.iter().map(String::as_str).collect(),
    };
    let on = levels.iter().filter(|l| linked(l)).count();
    match (on, script.default_start.is_empty()) {
        (0, _) => Boot::Disabled,
        (_, true) => Boot::Enabled,
        _ if on == levels.len() => Boot::Enabled,
        _ => Boot::Partly,
    }
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
