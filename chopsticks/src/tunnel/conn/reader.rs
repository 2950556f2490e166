//! Who reads an agent's replies. A waiting caller reads them itself ("the
//! waiter reads"): the first thread to wait takes the *reader role*, reads
//! frames and hands each reply to its slot until its own arrives, then hands
//! the role to another sleeping waiter. A sequential call thus costs no
//! hand-off between threads. A background thread, started with the first
//! future, reads only for futures (which cannot block) and stops as soon as a
//! blocking waiter wants the role. A sender whose pipe is full reads what
//! has arrived, so that calls sent without waiting cannot deadlock.

use std::os::fd::AsRawFd;
use std::process::ChildStdout;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::Instant;

use super::{reap, Conn, Stream};
use crate::tunnel::pending::{Lost, Outcome, Slot};
use crate::wire::{self, Response};

/// Whom a reader reads for.
pub(super) enum ReadFor<'a> {
    /// A blocking waiter: until its slot is done or the deadline passes.
    Waiter(&'a Slot, Option<Instant>),
    /// The background reader: while futures wait and no blocking waiter does.
    Futures,
    /// A sender whose write is blocked: what has arrived, without waiting.
    Available,
}

impl Conn {
    pub(super) fn take_role_if_free(&self) -> bool {
        let mut state = self.state();
        !std::mem::replace(&mut state.reading, true)
    }

    /// A future started waiting: make sure someone reads. The background
    /// reader starts with the first future.
    ///
    /// # Errors
    /// When the reader thread cannot be started (the future is not counted).
    pub(crate) fn future_waiting(self: &Arc<Self>) -> std::result::Result<(), String> {
        let mut state = self.state();
        if !state.background_started {
            let conn = Arc::clone(self);
            thread::Builder::new()
                .name(format!("chopsticks-reply-{}", self.host))
                .spawn(move || conn.read_in_background())
                .map_err(|e| format!("cannot start a thread to read replies: {e}"))?;
            state.background_started = true;
        }
        state.futures += 1;
        if !state.reading {
            self.background.notify_one();
        }
        Ok(())
    }

    /// Blocks until `slot` is done (`true`) or `deadline` passes (`false`),
    /// reading replies while nobody else does.
    pub(crate) fn wait_for(&self, slot: &Arc<Slot>, deadline: Option<Instant>) -> bool {
        loop {
            if slot.is_done() {
                return true;
            }
            let took_role = {
                let mut state = self.state();
                if state.reading {
                    state.sleepers.push_back(Arc::clone(slot));
                    false
                } else {
                    state.reading = true;
                    true
                }
            };
            // A sleeper wakes with its outcome, at its deadline, or holding
            // the role that a releasing reader handed to it.
            if took_role || slot.sleep(deadline) {
                self.read(ReadFor::Waiter(slot, deadline));
                self.release_role();
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                // Leave no entry behind while another waiter reads on.
                self.state().sleepers.retain(|s| !Arc::ptr_eq(s, slot));
                return slot.is_done();
            }
        }
    }

    /// Hands the reader role to a sleeping waiter whose reply is still
    /// missing, or frees it. Sleepers leave the list one at a time, under
    /// the lock: a list taken out whole would be empty for a moment, and a
    /// new holder releasing in that moment would free the role while the
    /// rest still sleep.
    pub(super) fn release_role(&self) {
        loop {
            let candidate = {
                let mut state = self.state();
                match state.sleepers.pop_front() {
                    Some(slot) => slot,
                    None => {
                        state.reading = false;
                        if state.futures > 0 {
                            self.background.notify_one();
                        }
                        return;
                    }
                }
            };
            // Refused when its reply is in or its waiter left: drop it.
            if candidate.offer_role() {
                return;
            }
        }
    }

    pub(super) fn read_in_background(self: Arc<Self>) {
        loop {
            {
                let mut state = self.state();
                while state.closed.is_none() && (state.reading || state.futures == 0) {
                    state = self
                        .background
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if state.closed.is_some() {
                    return;
                }
                state.reading = true;
            }
            self.read(ReadFor::Futures);
            self.release_role();
        }
    }

    /// Reads and delivers replies while `who` wants them. Holds the role.
    pub(super) fn read(&self, who: ReadFor<'_>) {
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let Some(Stream { reader, buf }) = stream.as_mut() else {
                return;
            };
            match who {
                ReadFor::Waiter(slot, deadline) => {
                    if slot.is_done() {
                        return;
                    }
                    if let Some(at) = deadline {
                        if reader.buffer().is_empty() && !readable(reader.get_ref(), at) {
                            return;
                        }
                    }
                }
                ReadFor::Futures => {
                    let state = self.state();
                    if state.futures == 0 || !state.sleepers.is_empty() {
                        return;
                    }
                }
                ReadFor::Available => {
                    if reader.buffer().is_empty() && !readable(reader.get_ref(), Instant::now()) {
                        return;
                    }
                }
            }
            let why = match wire::read_frame(reader, buf) {
                Ok(true) => match postcard::from_bytes::<Response>(buf) {
                    Ok(Response::Reply { req, result }) => {
                        self.deliver(req, result.map_err(Lost::Failed));
                        continue;
                    }
                    Ok(Response::Log {
                        level,
                        target,
                        message,
                    }) => {
                        self.relog(level, &target, &message);
                        continue;
                    }
                    Ok(Response::Hello(_)) => Some("the agent said hello twice".to_owned()),
                    Err(e) => Some(format!("undecodable reply from the agent: {e}")),
                },
                Ok(false) => None,
                Err(e) => Some(format!("reading the agent's output failed: {e}")),
            };
            *stream = None;
            drop(stream);
            if why.is_some() {
                // The stream is corrupt: stop the agent before reporting.
                reap(&mut self.child.lock().unwrap_or_else(PoisonError::into_inner));
            }
            return self.lost(why);
        }
    }

    /// Hands a record logged on the agent to this program's logger, with
    /// the host in front of the message.
    pub(super) fn relog(&self, level: u8, target: &str, message: &str) {
        let level = chopsticks_agent::level_from_wire(level).unwrap_or(log::Level::Trace);
        // The controller's level may have changed since the agent started.
        let metadata = log::Metadata::builder().level(level).target(target).build();
        if level > log::max_level() || !log::logger().enabled(&metadata) {
            return;
        }
        // The logger is this program's code, run while holding the reader
        // role: its panic must not leave the role held forever.
        let _ = std::panic::catch_unwind(|| {
            log::logger().log(
                &log::Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("[{}] {message}", self.host))
                    .build(),
            );
        });
    }

    /// Fails call `req`, if it still waits, with a timeout of `after`.
    pub(crate) fn expire(&self, req: u64, after: std::time::Duration) {
        self.deliver(req, Err(Lost::TimedOut(after)));
    }

    pub(super) fn deliver(&self, req: u64, outcome: Outcome) {
        let slot = self.state().waiting.remove(&req);
        if let Some(slot) = slot {
            if slot.complete(outcome) {
                self.state().futures -= 1;
            }
        }
    }
}

/// Waits until `stdout` has data (or hangs up) or `deadline` passes.
fn readable(stdout: &ChildStdout, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // A deadline that has passed still looks once: a reply may be in.
        let ms = if left.is_zero() {
            0
        } else {
            left.as_millis().clamp(1, i32::MAX as u128) as i32
        };
        let mut fd = libc::pollfd {
            fd: stdout.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            0 if ms == 0 => return false,
            0 => {}
            n if n > 0 => return true,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            // Let the read report whatever is wrong.
            _ => return true,
        }
    }
}
