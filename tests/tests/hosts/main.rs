//! The tests that need the SSH and container hosts of `tests/setup.sh`, in
//! one binary, one module per subject: link it once, and let one module's
//! slow tests overlap the next one's.
//!
//! What stays out, in binaries of its own: whatever watches this whole
//! process or changes what every module here relies on. `ssh.rs` empties
//! and tampers with cs-deb12's agent cache, from which every module here
//! runs the same agent; `group.rs` freezes cs-busybox, counts every ssh
//! control socket and connects 200 hosts at once; `via.rs` counts every
//! `ssh` child, `hostile.rs` every zombie and `soak.rs` every file, thread
//! and child of this process.

use std::sync::{Mutex, MutexGuard};

chopsticks::agent_test!();

/// Where this binary runs the core suite: each test there runs as
/// `suite::TEST::docker` and `suite::TEST::nsenter`.
macro_rules! suite_targets {
    ($test:path) => {
        #[test]
        fn docker() {
            $test(&crate::docker::DOCKER)
        }

        #[test]
        fn nsenter() {
            $test(&crate::command::NSENTER)
        }
    };
}

#[path = "../suite/mod.rs"]
mod suite;

mod apt_repos;
mod arch;
mod check_only;
mod cli;
mod command;
mod cron;
mod deploy;
mod dnf;
mod docker;
mod facts;
mod faults;
mod fetched;
mod files;
mod handlers;
mod journal;
mod jump;
mod keys_git;
mod kit;
mod mounts;
mod ops;
mod passwords;
mod saved_plans;
mod services;
mod steps;
mod system_ops;
mod system_state;
mod templates;
mod trust;

/// Held by the tests that change the containers' system state (`/etc`,
/// accounts and packages on cs-deb12 and cs-busybox, cs-hello on
/// cs-systemd) or read it twice and compare: they run one at a time, as
/// they did when each module was a binary of its own.
pub(crate) fn system_state() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
