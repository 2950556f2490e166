//! [`service`]: a service running or stopped, enabled at boot or not,
//! through the host's init system, planned from the state it reports.
//!
//! Each init system is a file of its own behind [`InitSystem`]: how to
//! tell that it runs a host, and how to plan a [`Service`] there. A new one
//! is a new file and a line in [`INIT_SYSTEMS`].

mod systemd;

use serde::{Deserialize, Serialize};

use super::{Change, Mode, OpError, Plan};
use crate::remote;

const OP: &str = "ops::service";

/// The init systems this operation knows, in the order a host is asked
/// for them.
static INIT_SYSTEMS: &[&dyn InitSystem] = &[&systemd::Systemd];

/// An init system: whether it runs this host, and what making a service
/// as a [`Service`] says would change there.
trait InitSystem: Sync {
    /// Whether it manages this host's services.
    fn detect(&self) -> bool;

    /// The plan for `spec`, whose name is valid.
    fn plan(&self, spec: Service) -> Result<Plan, OpError>;
}

/// What the unit should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum State {
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
    run: Option<State>,
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

    /// Reloaded (`systemctl reload`), or started if it is not running:
    /// always a change.
    pub fn reloaded(mut self) -> Service {
        self.run = Some(State::Reloaded);
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
    /// When no init system this operation knows runs the host, the name is
    /// not a unit name, or the unit is masked and should be enabled.
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
                Err(OpError::new(
                    OP,
                    &self.name,
                    format!(
                        "systemd does not run on this host (PID 1 is {}): ops::service \
                         manages systemd units; for another init system use ops::command",
                        init.trim()
                    ),
                ))
            }
        }
    }
}

/// Makes a unit run (or not) and start at boot (or not) as [`Service`]
/// says.
///
/// # Errors
/// [`OpError`] naming the unit: systemd does not run the host, the unit is
/// missing or masked, or `systemctl` failed (quoted).
#[remote]
pub fn service(spec: Service, mode: Mode) -> Result<Change, OpError> {
    spec.plan()?.run(mode)
}
