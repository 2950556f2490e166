//! The agent's threads. One *reader* reads requests and runs each call
//! itself, so a call costs no hand-off between threads. A watchdog ticks
//! while calls run: when one call has run for a tick or two, the watchdog
//! takes the reader's job away from it and starts a new reader, so a slow
//! call delays the next request by at most about [`TICK`] and never blocks
//! it. The slow call's thread sends its reply and ends. With no calls for a
//! while, the watchdog sleeps until the next call starts.
//!
//! At most `max_call_threads` slow calls run on threads of their own at
//! once. Past it, a slow call keeps the reader's job, so the requests
//! behind it wait until a call ends instead of each getting a thread;
//! except while calls with streams run (each on a thread of its own),
//! whose frames the reader must go on reading.

use crate::sync::Unpoisoned;
use std::fs::File;
use std::io::BufReader;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::cancel::{self, Cancels};
use super::dispatch::dispatch;
use super::output::Frames;
use super::streams::{self, Table};
use crate::registry::Registry;
use crate::wire::{self, Failure, Request, Response};

/// The watchdog's period: how long a slow call can hold up the next request.
pub const TICK: Duration = Duration::from_millis(1);
/// Idle ticks before the watchdog sleeps until the next call. Few: an
/// agent that waits between calls (for the rest of its fan-out, for its
/// close) must not tick; a call that finds it asleep wakes it, which costs
/// about what one tick does.
const IDLE_TICKS: u32 = 3;
/// `in_call` value while the reader is reading, not running a call.
const READING: u64 = 0;
/// `in_call` value once the watchdog took a slow call's reader job away.
const TAKEN: u64 = u64::MAX;

/// Why serving ended: `Ok` for EOF or shutdown.
pub(super) type Exit = Result<(), String>;

pub(super) struct Workers {
    registry: &'static Registry,
    /// Only the reader in charge locks it, so it is never contended.
    input: Mutex<BufReader<File>>,
    output: Arc<Frames>,
    /// The streams of running calls.
    streams: Table,
    /// The cancellation flags of running calls.
    pub(super) cancels: Cancels,
    /// The sequence number of the call the reader in charge is running, or
    /// [`READING`], or [`TAKEN`].
    in_call: AtomicU64,
    /// Calls started, for numbering and for the watchdog's idleness test.
    calls: AtomicU64,
    watchdog_asleep: AtomicBool,
    watchdog_lock: Mutex<()>,
    watchdog_wake: Condvar,
    exit: Mutex<Sender<Exit>>,
    /// Slow calls running on threads of their own, and how many may.
    busy: AtomicUsize,
    max_busy: usize,
    /// Calls with streams running (each on a thread of its own).
    streaming: AtomicUsize,
}

impl Workers {
    pub(super) fn new(
        registry: &'static Registry,
        input: File,
        output: Arc<Frames>,
        exit: Sender<Exit>,
        max_busy: usize,
    ) -> Arc<Workers> {
        Arc::new(Workers {
            registry,
            input: Mutex::new(BufReader::with_capacity(64 * 1024, input)),
            streams: Table::new(Arc::clone(&output)),
            cancels: Cancels::default(),
            output,
            in_call: AtomicU64::new(READING),
            calls: AtomicU64::new(0),
            watchdog_asleep: AtomicBool::new(false),
            watchdog_lock: Mutex::new(()),
            watchdog_wake: Condvar::new(),
            exit: Mutex::new(exit),
            busy: AtomicUsize::new(0),
            max_busy,
            streaming: AtomicUsize::new(0),
        })
    }

    /// Starts the first reader and the watchdog.
    pub(super) fn start(self: &Arc<Self>) -> std::io::Result<()> {
        self.spawn_reader()?;
        let workers = Arc::clone(self);
        thread::Builder::new()
            .name("chopsticks-watchdog".into())
            .spawn(move || workers.watch())
            .map(drop)
    }

    fn spawn_reader(self: &Arc<Self>) -> std::io::Result<()> {
        let workers = Arc::clone(self);
        thread::Builder::new()
            .name("chopsticks-worker".into())
            .spawn(move || workers.read())
            .map(drop)
    }

    /// Starts a thread that becomes the reader in charge once it receives
    /// `true`, and ends on `false`.
    fn spawn_standby(self: &Arc<Self>) -> std::io::Result<Sender<bool>> {
        let (go, wait) = std::sync::mpsc::channel();
        let workers = Arc::clone(self);
        thread::Builder::new()
            .name("chopsticks-worker".into())
            .spawn(move || {
                if wait.recv() == Ok(true) {
                    workers.read();
                }
            })?;
        Ok(go)
    }

    fn finish(&self, exit: Exit) {
        let _ = self.output.release();
        let _ = self.exit.lock().unpoisoned().send(exit);
    }

    /// The reader in charge: read a request, run it, repeat, until the
    /// watchdog hands the job to another thread during a slow call.
    fn read(self: Arc<Self>) {
        let mut buf = Vec::new();
        // Taking over from a slow call: the job is this thread's now, and
        // the watchdog may rest while it only waits for requests.
        let _ = self
            .in_call
            .compare_exchange(TAKEN, READING, SeqCst, SeqCst);
        loop {
            let read = {
                let mut input = self.input.lock().unpoisoned();
                // About to wait for the controller: the replies held for
                // this burst go out first.
                if !whole_frame(input.buffer()) {
                    let _ = self.output.release();
                }
                wire::read_frame(&mut *input, &mut buf)
            };
            match read {
                Ok(true) => {}
                // The controller is gone: nobody is left to take results.
                Ok(false) => return self.finish(Ok(())),
                Err(e) => return self.finish(Err(format!("reading from the controller: {e}"))),
            }
            let (req, fn_id, args, input, output) = match postcard::from_bytes::<Request<'_>>(&buf)
            {
                Ok(Request::Call {
                    req,
                    fn_id,
                    args,
                    input,
                    output,
                }) => (req, fn_id, args, input, output),
                Ok(Request::Shutdown) => return self.finish(Ok(())),
                Ok(stream) => match self
                    .cancel(&stream)
                    .and_then(|()| self.streams.handle(&stream))
                {
                    Ok(()) => continue,
                    Err(e) => return self.finish(Err(e)),
                },
                Err(e) => {
                    let message = format!("undecodable request from the controller: {e}");
                    return self.finish(Err(message));
                }
            };
            if input || output {
                // A call with streams waits for frames this thread must
                // read: another thread reads from now on, and this one
                // ends with the call.
                let streams = self.streams.open(req, input, output);
                self.streaming.fetch_add(1, SeqCst);
                if self.spawn_reader().is_ok() {
                    let result = self.run(req, || {
                        streams::with_current(Some(streams), || {
                            dispatch(self.registry, fn_id, args)
                        })
                    });
                    self.streams.close(req);
                    self.reply(req, result);
                    self.streaming.fetch_sub(1, SeqCst);
                    return;
                }
                self.streaming.fetch_sub(1, SeqCst);
                // No thread: the call cannot get its stream frames.
                self.streams.close(req);
                let result = Err(Failure::Error {
                    message: "the agent cannot start a thread to read this call's stream".into(),
                    chain: Vec::new(),
                });
                self.reply(req, result);
                continue;
            }
            let seq = self.calls.fetch_add(1, SeqCst) + 1;
            self.in_call.store(seq, SeqCst);
            if self.watchdog_asleep.load(SeqCst) {
                let _guard = self.watchdog_lock.lock().unpoisoned();
                self.watchdog_asleep.store(false, SeqCst);
                self.watchdog_wake.notify_one();
            }
            let result = self.run(req, || dispatch(self.registry, fn_id, args));
            // The call is over: a reply blocked by a controller that reads
            // slowly is no reason for another reader (it would block too).
            let still_in_charge = self
                .in_call
                .compare_exchange(seq, READING, SeqCst, SeqCst)
                .is_ok();
            if still_in_charge {
                self.hold_reply(req, result);
            } else {
                self.reply(req, result);
            }
            if !still_in_charge {
                // The watchdog gave the reader's job to another thread.
                self.busy.fetch_sub(1, SeqCst);
                return;
            }
        }
    }

    /// Ticks while calls run; takes the reader's job from a slow call.
    fn watch(self: Arc<Self>) {
        let mut last_seen = READING;
        let mut idle_ticks = 0;
        let mut last_calls = 0;
        let mut stale = false;
        loop {
            thread::sleep(TICK);
            let _ = self.output.release_stale(&mut stale);
            let calls = self.calls.load(SeqCst);
            let in_call = self.in_call.load(SeqCst);
            if in_call != READING && in_call != TAKEN && in_call == last_seen {
                // A slow call: the replies held before it go out now.
                let _ = self.output.try_release();
                if self.busy.load(SeqCst) >= self.max_busy && self.streaming.load(SeqCst) == 0 {
                    // At the limit: this call keeps the reader's job, and
                    // requests wait for a call to end. (Not while calls with
                    // streams run: their frames must go on being read.)
                    continue;
                }
                // The same call for a whole tick: give its job to a new
                // reader. The thread exists before the job is taken, so the
                // job is never taken without someone to do it. Counted
                // before it is taken: the call may end at once.
                match self.spawn_standby() {
                    Ok(go) => {
                        self.busy.fetch_add(1, SeqCst);
                        let taken = self
                            .in_call
                            .compare_exchange(in_call, TAKEN, SeqCst, SeqCst)
                            .is_ok();
                        if !taken {
                            self.busy.fetch_sub(1, SeqCst);
                        }
                        let _ = go.send(taken);
                    }
                    Err(e) => {
                        // Requests wait until this call ends; try next tick.
                        eprintln!("chopsticks agent: cannot start a reader thread: {e}");
                    }
                }
                last_seen = READING;
                continue;
            }
            last_seen = in_call;
            if calls != last_calls || in_call != READING {
                last_calls = calls;
                idle_ticks = 0;
                continue;
            }
            idle_ticks += 1;
            if idle_ticks < IDLE_TICKS {
                continue;
            }
            // Idle: sleep until a reader starts a call. The reader stores
            // `in_call` before it reads `watchdog_asleep`, and this thread
            // sets `watchdog_asleep` before it reads `in_call` again, so one
            // of the two always sees the other.
            let mut guard = self.watchdog_lock.lock().unpoisoned();
            self.watchdog_asleep.store(true, SeqCst);
            if self.in_call.load(SeqCst) != READING || self.calls.load(SeqCst) != calls {
                self.watchdog_asleep.store(false, SeqCst);
                continue;
            }
            while self.watchdog_asleep.load(SeqCst) {
                guard = self.watchdog_wake.wait(guard).unpoisoned();
            }
            idle_ticks = 0;
        }
    }

    /// Runs call `req` with its cancellation flag, which a `Cancel` frame
    /// sets while it runs.
    fn run<R>(&self, req: u64, call: impl FnOnce() -> R) -> R {
        let flag = self.cancels.start(req);
        let result = cancel::with_current(flag, call);
        self.cancels.end(req);
        result
    }

    /// A `Cancel` frame sets its call's flag (its streams, if any, fail
    /// too: `streams.handle`).
    fn cancel(&self, request: &Request<'_>) -> Result<(), String> {
        if let Request::Cancel { req } = request {
            self.cancels.cancel(*req);
        }
        Ok(())
    }

    fn reply(&self, req: u64, result: Result<String, Failure>) {
        if let Some(frame) = reply_frame(req, result) {
            // A failed write means the controller is gone; the reader sees EOF.
            let _ = self.output.send(&frame);
        }
    }

    /// Replies as [`reply`](Self::reply) does, with the reply held while
    /// more requests are buffered (`output`'s docs).
    fn hold_reply(&self, req: u64, result: Result<String, Failure>) {
        if let Some(frame) = reply_frame(req, result) {
            let _ = self.output.hold(&frame);
        }
    }
}

/// Whether `buffered` starts with a whole frame.
fn whole_frame(buffered: &[u8]) -> bool {
    match buffered.first_chunk::<4>() {
        Some(len) => buffered.len() - 4 >= u32::from_le_bytes(*len) as usize,
        None => false,
    }
}

/// Call `req`'s reply, encoded; a result too large for a frame becomes a
/// failure that says where large data goes.
fn reply_frame(req: u64, result: Result<String, Failure>) -> Option<Vec<u8>> {
    let frame = wire::encode_frame(&Response::Reply { req, result }).or_else(|e| {
        let result = Err(Failure::BadReturn {
            message: format!(
                "{e}: send large data through the call's output stream \
                     (`Tunnel::call_with_output`, `agent::stream::output`) or a file \
                     (`Tunnel::fetch`)"
            ),
        });
        wire::encode_frame(&Response::Reply { req, result })
    });
    frame.ok()
}
