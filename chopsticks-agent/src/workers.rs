//! The agent's worker threads, leader/follower style: one worker at a time
//! reads the next request; the worker that read a call runs it itself and,
//! when no other worker is waiting to read, first starts one. So a call costs
//! no hand-off between threads, a slow call never blocks the next request,
//! and steady traffic starts no threads.

use std::fs::File;
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crate::registry::Registry;
use crate::wire::{self, Failure, Request, Response};

/// Workers beyond this many waiting to read exit after their call.
const KEEP_WAITING: usize = 4;

/// Why serving ended: `Ok` for EOF or shutdown.
pub type Exit = Result<(), String>;

pub struct Workers {
    registry: &'static Registry,
    input: Mutex<BufReader<File>>,
    output: Mutex<File>,
    /// Workers waiting for the input (or holding it before their read).
    waiting: AtomicUsize,
    exit: Mutex<Sender<Exit>>,
}

impl Workers {
    pub fn new(
        registry: &'static Registry,
        input: File,
        output: File,
        exit: Sender<Exit>,
    ) -> Arc<Workers> {
        Arc::new(Workers {
            registry,
            input: Mutex::new(BufReader::with_capacity(64 * 1024, input)),
            output: Mutex::new(output),
            waiting: AtomicUsize::new(0),
            exit: Mutex::new(exit),
        })
    }

    /// Writes raw bytes (the preamble and hello) to the controller.
    pub fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut out = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(bytes)?;
        out.flush()
    }

    /// Starts one more worker.
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<()> {
        let workers = Arc::clone(self);
        thread::Builder::new()
            .name("chopsticks-worker".into())
            .spawn(move || workers.work())
            .map(drop)
    }

    fn finish(&self, exit: Exit) {
        let _ = self
            .exit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(exit);
    }

    fn work(self: Arc<Self>) {
        let mut buf = Vec::new();
        loop {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let read = {
                let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                wire::read_frame(&mut *input, &mut buf)
            };
            match read {
                Ok(true) => {}
                // The controller is gone: nobody is left to take results.
                Ok(false) => return self.finish(Ok(())),
                Err(e) => return self.finish(Err(format!("reading from the controller: {e}"))),
            }
            let (req, fn_id, args) = match postcard::from_bytes::<Request<'_>>(&buf) {
                Ok(Request::Call { req, fn_id, args }) => (req, fn_id, args),
                Ok(Request::Shutdown) => return self.finish(Ok(())),
                Err(e) => {
                    let message = format!("undecodable request from the controller: {e}");
                    return self.finish(Err(message));
                }
            };
            // Someone must read the next request while this call runs. If no
            // thread can be started, requests wait until this call ends.
            if self.waiting.load(Ordering::SeqCst) == 0 && self.spawn().is_err() {
                eprintln!("chopsticks agent: cannot start a worker thread; calls queue up");
            }
            let result = crate::serve::dispatch(self.registry, fn_id, args);
            self.reply(req, result);
            if self.waiting.load(Ordering::SeqCst) >= KEEP_WAITING {
                return;
            }
        }
    }

    fn reply(&self, req: u64, result: Result<String, Failure>) {
        let frame = wire::encode_frame(&Response::Reply { req, result }).or_else(|e| {
            let result = Err(Failure::BadReturn {
                message: e.to_string(),
            });
            wire::encode_frame(&Response::Reply { req, result })
        });
        // A failed write means the controller is gone; a reader sees EOF.
        if let Ok(frame) = frame {
            let _ = self.send(&frame);
        }
    }
}
