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
    (alive, links)
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
    /// is how the init system says a running service (`running`).
    fn cycle(&self, started: &str, boot_link: &str) {
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
        assert!(now.links.iter().any(|l| l == boot_link), "{now:?}");
        assert_eq!(self.events_after(0), ["start version=1.1 config="]);
        assert_eq!(
            up(Mode::Apply).unwrap().summary,
            format!("service {name}: {started}, enabled")
        );

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
        assert!(!now.links.iter().any(|l| l == boot_link), "{now:?}");
        assert_eq!(
            down(Mode::Apply).unwrap().summary,
            format!("service {name}: stopped, disabled")
        );
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
    hello.cycle("running", "/etc/rc2.d/S01cs-hello");
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
    tick.cycle("started", "/etc/runlevels/default/cs-tick");

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
            && err.contains("no such init script: install the package"),
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
        for gone in ["/etc/init.d/cs-odd", "/tmp/cs-odd-status"] {
            t.call(ops::file, (ops::File::new(gone).absent(), Mode::Apply))
                .unwrap();
        }
    }
}
