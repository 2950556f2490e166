//! `ops::service` where systemd does not run: sysvinit on cs-deb12 (PID 1
//! is sshd; cs-hello's LSB init script, from the local apt repository)
//! and on cs-busybox, OpenRC on cs-openrc (a daemon whose openrc-run
//! script the test writes). The state each step leaves is read back
//! without the init system: the daemon's process and its boot links.

use std::path::Path;
use std::time::Duration;

use chopsticks::ops::{self, Change, Mode, Package, Service};
use chopsticks::Tunnel;
use chopsticks_tests::*;

use crate::steps::{check_then_apply_state, connect};

fn service(t: &Tunnel, spec: Service, mode: Mode) -> chopsticks::Result<Change> {
    t.call(ops::service, (spec, mode))
}

/// What the host has of the service `name`, read without its init
/// system: whether the process in `pidfile` is alive (not a zombie), and
/// the boot links named after it in `/etc/rc[2-5].d` and OpenRC's
/// `default` runlevel.
#[chopsticks::remote]
fn boot_and_process(pidfile: String, name: String) -> (bool, Vec<String>) {
    let alive = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok())
        .and_then(|stat| Some(stat.rsplit_once(") ")?.1.chars().next()? != 'Z'))
        .unwrap_or(false);
    (alive, boot_links(&name))
}

/// The boot links of the service `name` in runlevels 2 to 5 (`S01name`,
/// `K01name`) and in OpenRC's `default` runlevel, sorted.
fn boot_links(name: &str) -> Vec<String> {
    let mut links = Vec::new();
    for dir in [
        "/etc/rc2.d",
        "/etc/rc3.d",
        "/etc/rc4.d",
        "/etc/rc5.d",
        "/etc/runlevels/default",
    ] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let link = file.trim_start_matches(|c: char| "SK0123456789".contains(c));
            if link == name {
                links.push(format!("{dir}/{file}"));
            }
        }
    }
    links.sort();
    links
}

/// A daemon's state and the events it logged to `log`.
#[derive(Debug, PartialEq)]
struct Seen {
    alive: bool,
    links: Vec<String>,
    events: Vec<String>,
}

/// Where a test daemon keeps its pid and logs its events.
struct Daemon<'t> {
    t: &'t Tunnel,
    name: &'static str,
    pidfile: &'static str,
    log: &'static str,
}

impl Daemon<'_> {
    fn seen(&self) -> Seen {
        let (alive, links) = self
            .t
            .call(boot_and_process, (self.pidfile.into(), self.name.into()))
            .unwrap();
        Seen {
            alive,
            links,
            events: self.events(),
        }
    }

    /// The events it logged (`start version=1.1 config=`), without their
    /// times.
    fn events(&self) -> Vec<String> {
        let log = self
            .t
            .call(read_file, (self.log.to_owned(),))
            .unwrap_or_default();
        log.lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
            .collect()
    }

    /// Its events once there are more than `seen`, or after 10 s: it logs
    /// a start or a reload a moment after the script returned.
    fn events_after(&self, seen: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events();
            if events.len() > seen || std::time::Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn apply(&self, spec: Service) -> Change {
        service(self.t, spec, Mode::Apply).unwrap()
    }

    fn file(&self, file: ops::File) {
        self.t.call(ops::file, (file, Mode::Apply)).unwrap();
    }

    /// Started and enabled, settled, restarted and reloaded (each a
    /// change and an event in its log), then stopped and disabled: what
    /// each step says, checked against what the host then has. `started`
    /// is how the init system says a running service (`running`);
    /// `boot_links` are all the boot links enabling makes.
    fn cycle(&self, started: &str, boot_links: &[&str]) {
        let name = self.name;
        self.apply(Service::new(name).stopped().enabled(false));
        self.file(ops::File::new(self.log).content(""));
        let state = || self.seen();
        let up = |m| service(self.t, Service::new(name).running().enabled(true), m);
        let applied = check_then_apply_state(&state, &up);
        assert_eq!(
            applied.summary,
            format!("service {name}: enable, start (was stopped)")
        );
        let now = self.seen();
        assert!(now.alive, "{now:?}");
        assert_eq!(now.links, boot_links, "{now:?}");
        assert_eq!(self.events_after(0), ["start version=1.1 config="]);
        let again = up(Mode::Apply).unwrap();
        assert!(!again.changed, "{again:?}");
        assert_eq!(again.summary, format!("service {name}: {started}, enabled"));

        // Restarted and reloaded always change; check mode does neither.
        for (spec, verb, event) in [
            (Service::new(name).restarted(), "restart", "start"),
            (Service::new(name).reloaded(), "reload", "reload"),
        ] {
            let before = self.seen();
            let check = service(self.t, spec.clone(), Mode::Check).unwrap();
            assert_eq!(self.seen(), before, "check mode touched the service");
            let apply = service(self.t, spec, Mode::Apply).unwrap();
            assert_eq!(check, apply);
            assert!(apply.changed, "{apply:?}");
            assert_eq!(apply.summary, format!("service {name}: {verb}"));
            let events = self.events_after(before.events.len());
            assert_eq!(events.len(), before.events.len() + 1, "{events:?}");
            assert!(events.last().unwrap().starts_with(event), "{events:?}");
            assert!(self.seen().alive);
        }

        let down = |m| service(self.t, Service::new(name).stopped().enabled(false), m);
        let stopped = check_then_apply_state(&state, &down);
        assert_eq!(stopped.summary, format!("service {name}: disable, stop"));
        let now = self.seen();
        assert!(!now.alive, "{now:?}");
        assert!(
            !now.links.iter().any(|l| boot_links.contains(&l.as_str())),
            "{now:?}"
        );
        let again = down(Mode::Apply).unwrap();
        assert!(!again.changed, "{again:?}");
        assert_eq!(again.summary, format!("service {name}: stopped, disabled"));
    }
}

/// Runs `argv` on the host (it must succeed).
fn run(t: &Tunnel, argv: &[&str]) {
    let command = ops::Command::new(argv.iter().copied()).changed_when(ops::ChangedWhen::Always);
    t.call(ops::command, (command, Mode::Apply)).unwrap();
}

#[test]
fn sysvinit_scripts_start_enable_restart_reload_and_stop_on_debian() {
    let _one = crate::system_state();
    let t = connect("cs-deb12");
    t.call(ops::package, (Package::new(["cs-hello"]), Mode::Apply))
        .unwrap();
    t.call(
        ops::file,
        (ops::File::new("/etc/cs-hello.conf").absent(), Mode::Apply),
    )
    .unwrap();
    let hello = Daemon {
        t: &t,
        name: "cs-hello",
        pidfile: "/run/cs-hello.pid",
        log: "/var/log/cs-hello.log",
    };
    hello.cycle(
        "running",
        &[
            "/etc/rc2.d/S01cs-hello",
            "/etc/rc3.d/S01cs-hello",
            "/etc/rc4.d/S01cs-hello",
            "/etc/rc5.d/S01cs-hello",
        ],
    );
    // Disabled is a K link in each runlevel, as update-rc.d leaves it.
    let seen = hello.seen();
    assert!(
        seen.links.iter().all(|l| l.contains("/K01cs-hello")) && seen.links.len() == 4,
        "{seen:?}"
    );
    run(&t, &["update-rc.d", "-f", "cs-hello", "remove"]);
    t.call(
        ops::package,
        (Package::new(["cs-hello"]).absent(), Mode::Apply),
    )
    .unwrap();
}

#[test]
fn openrc_scripts_start_enable_restart_reload_and_stop() {
    let _one = crate::system_state();
    let t = connect("cs-openrc");
    // A daemon that logs its starts and reloads as cs-hello does, and its
    // openrc-run script (started through sh, which start-stop-daemon
    // finds it by).
    t.call(
        ops::file,
        (
            ops::File::new("/usr/local/bin/cs-tick")
                .mode(0o755)
                .content(concat!(
                "#!/bin/sh\n",
                "log() { echo \"$(date +%s) $1 version=1.1 config=\" >>/var/log/cs-tick.log; }\n",
                "trap 'log reload' HUP\n",
                "trap 'exit 0' TERM\n",
                "log start\n",
                "while :; do sleep 1 & wait $!; done\n",
            )),
            Mode::Apply,
        ),
    )
    .unwrap();
    let script = ops::File::new("/etc/init.d/cs-tick")
        .mode(0o755)
        .content(concat!(
            "#!/sbin/openrc-run\n",
            "description=\"chopsticks test daemon\"\n",
            "command=/bin/sh\n",
            "command_args=/usr/local/bin/cs-tick\n",
            "command_background=true\n",
            "pidfile=/run/cs-tick.pid\n",
            "extra_started_commands=\"reload\"\n",
            "reload() {\n",
            "    ebegin \"Reloading $RC_SVCNAME\"\n",
            "    kill -HUP \"$(cat \"$pidfile\")\"\n",
            "    eend $?\n",
            "}\n",
        ));
    t.call(ops::file, (script, Mode::Apply)).unwrap();
    let tick = Daemon {
        t: &t,
        name: "cs-tick",
        pidfile: "/run/cs-tick.pid",
        log: "/var/log/cs-tick.log",
    };
    tick.cycle("started", &["/etc/runlevels/default/cs-tick"]);

    t.call(
        ops::file,
        (ops::File::new("/etc/init.d/cs-tick").absent(), Mode::Apply),
    )
    .unwrap();
}

#[test]
fn sysvinit_runs_busybox_services_too() {
    let _one = crate::system_state();
    let t = connect("cs-busybox");
    // cs-busybox's sshd is the container's, whose init script finds it by
    // its pid file: running and enabled, nothing to do.
    let ssh = Service::new("ssh").running().enabled(true);
    for m in [Mode::Check, Mode::Apply] {
        let change = service(&t, ssh.clone(), m).unwrap();
        assert_eq!(
            (change.changed, change.summary.as_str()),
            (false, "service ssh: running, enabled")
        );
    }
    missing_scripts_are_noted_then_refused(&t, "cs-busybox");
}

/// A script an earlier step would install is noted in check mode, and
/// refused by apply while it is missing.
fn missing_scripts_are_noted_then_refused(t: &Tunnel, host: &str) {
    let spec = Service::new("cs-nope").running().enabled(true);
    let noted = service(t, spec.clone(), Mode::Check).unwrap();
    assert_eq!(
        noted.summary,
        "service cs-nope: enable, start (was stopped); needs the script \
         /etc/init.d/cs-nope, which is not there now and must exist by then (ops::package)"
    );
    let err = service(t, spec, Mode::Apply).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{host}: "))
            && err.contains("ops::service cs-nope: ")
            && err.contains("no such init script /etc/init.d/cs-nope: install the package"),
        "{err}"
    );
}

#[test]
fn script_errors_name_the_service_and_what_to_do() {
    let _one = crate::system_state();
    for host in ["cs-deb12", "cs-openrc"] {
        let t = connect(host);
        missing_scripts_are_noted_then_refused(&t, host);
        // A script without reload, whose status is what a file says.
        let status = Path::new("/tmp/cs-odd-status");
        t.call(
            ops::file,
            (ops::File::new(status).content("0\n"), Mode::Apply),
        )
        .unwrap();
        let odd = ops::File::new("/etc/init.d/cs-odd")
            .mode(0o755)
            .content(match host {
                "cs-openrc" => concat!(
                    "#!/sbin/openrc-run\n",
                    "status() { echo \"cs-odd: status $(cat /tmp/cs-odd-status)\"; ",
                    "return \"$(cat /tmp/cs-odd-status)\"; }\n",
                ),
                _ => concat!(
                    "#!/bin/sh\n",
                    "case \"$1\" in\n",
                    "start|stop|restart|force-reload) ;;\n",
                    "status) echo \"cs-odd: status $(cat /tmp/cs-odd-status)\"; ",
                    "exit \"$(cat /tmp/cs-odd-status)\" ;;\n",
                    "esac\n",
                ),
            });
        t.call(ops::file, (odd, Mode::Apply)).unwrap();
        for m in [Mode::Check, Mode::Apply] {
            let err = service(&t, Service::new("cs-odd").reloaded(), m)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(
                    "ops::service cs-odd: the script /etc/init.d/cs-odd has no reload \
                     action: restart the service instead (Service::restarted)"
                ),
                "{host}: {err}"
            );
        }
        t.call(
            ops::file,
            (ops::File::new(status).content("4\n"), Mode::Apply),
        )
        .unwrap();
        let err = service(&t, Service::new("cs-odd").running(), Mode::Check)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("status` exited with status 4, which is none of 0 ")
                && err.contains("cs-odd: status 4"),
            "{host}: {err}"
        );
        // A script that is not executable, and one without status: what
        // they would say is no state.
        let plain = ops::File::new("/etc/init.d/cs-odd").mode(0o644);
        t.call(ops::file, (plain, Mode::Apply)).unwrap();
        let err = service(&t, Service::new("cs-odd").running(), Mode::Check)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ops::service cs-odd: the script /etc/init.d/cs-odd is not executable")
                && err.contains("chmod 755"),
            "{host}: {err}"
        );
        let mute = ops::File::new("/etc/init.d/cs-odd")
            .mode(0o755)
            .content("#!/bin/sh\ncase \"$1\" in\nstart|stop) ;;\n*) exit 3 ;;\nesac\n");
        t.call(ops::file, (mute, Mode::Apply)).unwrap();
        let err = service(&t, Service::new("cs-odd").running(), Mode::Check)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ops::service cs-odd: the script /etc/init.d/cs-odd has no status action"),
            "{host}: {err}"
        );
        for gone in ["/etc/init.d/cs-odd", "/tmp/cs-odd-status"] {
            t.call(ops::file, (ops::File::new(gone).absent(), Mode::Apply))
                .unwrap();
        }
    }
}

/// What the host has of the LSB service cs-lsb: whether it is on (its
/// state file) and its boot links in the runlevels.
#[chopsticks::remote]
fn lsb_state() -> (bool, Vec<String>) {
    let on = Path::new("/run/cs-lsb.on").exists();
    (on, boot_links("cs-lsb"))
}

#[test]
fn openrc_runs_lsb_scripts_through_update_rc_d() {
    let _one = crate::system_state();
    let t = connect("cs-openrc");
    // An LSB script, as most Debian packages ship: its status by the LSB's
    // codes, its runlevels by its header.
    let script = ops::File::new("/etc/init.d/cs-lsb")
        .mode(0o755)
        .content(concat!(
            "#!/bin/sh\n",
            "### BEGIN INIT INFO\n",
            "# Provides:          cs-lsb\n",
            "# Required-Start:\n",
            "# Required-Stop:\n",
            "# Default-Start:     2 3 4 5\n",
            "# Default-Stop:      0 1 6\n",
            "### END INIT INFO\n",
            "case \"$1\" in\n",
            "start) touch /run/cs-lsb.on ;;\n",
            "stop) rm -f /run/cs-lsb.on ;;\n",
            "restart|force-reload) touch /run/cs-lsb.on ;;\n",
            "status) [ -f /run/cs-lsb.on ] && exit 0; exit 3 ;;\n",
            "*) exit 3 ;;\n",
            "esac\n",
        ));
    t.call(ops::file, (script, Mode::Apply)).unwrap();
    let state = || t.call(lsb_state, ()).unwrap();
    let up = |m| service(&t, Service::new("cs-lsb").running().enabled(true), m);
    let applied = check_then_apply_state(&state, &up);
    assert_eq!(
        applied.summary,
        "service cs-lsb: enable, start (was stopped)"
    );
    let (on, links) = state();
    assert!(on);
    assert!(
        links.iter().any(|l| l == "/etc/runlevels/default/cs-lsb")
            && ["2", "3", "4", "5"].iter().all(|l| links
                .iter()
                .any(|k| k.starts_with(&format!("/etc/rc{l}.d/S")))),
        "{links:?}"
    );
    let again = up(Mode::Apply).unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(again.summary, "service cs-lsb: running, enabled");

    let down = |m| service(&t, Service::new("cs-lsb").stopped().enabled(false), m);
    let stopped = check_then_apply_state(&state, &down);
    assert_eq!(stopped.summary, "service cs-lsb: disable, stop");
    let (on, links) = state();
    assert!(!on);
    assert!(
        !links
            .iter()
            .any(|l| l.contains("/runlevels/") || l.contains("/S")),
        "{links:?}"
    );
    let again = down(Mode::Apply).unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(again.summary, "service cs-lsb: stopped, disabled");

    run(&t, &["update-rc.d", "-f", "cs-lsb", "remove"]);
    t.call(
        ops::file,
        (ops::File::new("/etc/init.d/cs-lsb").absent(), Mode::Apply),
    )
    .unwrap();
}
