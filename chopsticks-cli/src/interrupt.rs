//! Ctrl-C in a kit tool: the first stops the run (no new host or batch
//! starts, the calls in flight are cancelled on their hosts, the recap
//! names the interrupted hosts and the journal records the run, the tool
//! exits 130); a second one exits at once, saying that the run is not
//! journaled. SIGTERM and SIGHUP (a service manager stopping the tool, a
//! closed terminal) count as Ctrl-C. The stop is bounded: a run still
//! going [`GRACE`] after the first signal exits at once too.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Once;
use std::time::Duration;

/// How long the run has, after the first signal, to stop and write its
/// record before the tool exits without it.
pub const GRACE: Duration = Duration::from_secs(60);

/// The signals that stop a run.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What a second signal says before exiting, before the run's record is
/// written and after.
const QUIT: &[u8] = b"\nquit at once: this run is not journaled\n";
const QUIT_RECORDED: &[u8] = b"\nquit at once\n";

/// Whether the run's record was written (or there is none to write).
static RECORDED: AtomicBool = AtomicBool::new(false);

/// Tells a second signal that the run's record is written: it no longer
/// says that the run is not journaled.
pub(crate) fn recorded() {
    RECORDED.store(true, Ordering::SeqCst);
}

/// The write end of the pipe the handler wakes the watcher through.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// How many times SIGINT arrived.
static HITS: AtomicU32 = AtomicU32::new(0);

/// What the signals run: only what is async-signal-safe (an atomic,
/// `write`, `_exit`).
extern "C" fn on_signal(signal: libc::c_int) {
    if HITS.fetch_add(1, Ordering::SeqCst) >= 1 {
        quit(signal);
    }
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write is async-signal-safe; `byte` outlives the call.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Says on stderr that the run is not journaled, and exits 128 + `signal`
/// (130 for Ctrl-C) at once.
fn quit(signal: libc::c_int) -> ! {
    // SAFETY: write and _exit are async-signal-safe; QUIT is static.
    unsafe {
        let said = match RECORDED.load(Ordering::SeqCst) {
            true => QUIT_RECORDED,
            false => QUIT,
        };
        let _ = libc::write(2, said.as_ptr().cast(), said.len());
        libc::_exit(128 + signal)
    }
}

/// Installs the handler, once per process. Without a handler (it could
/// not be installed) Ctrl-C ends the tool as it would any program.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        // SAFETY: fds[0] was just opened and is owned here from now on.
        let mut woken = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let watcher = std::thread::Builder::new()
            .name("chopsticks-ctrl-c".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                if matches!(woken.read(&mut byte), Ok(1)) {
                    let signal = libc::c_int::from(byte[0]);
                    let name = match signal {
                        libc::SIGTERM => "terminated (SIGTERM)",
                        libc::SIGHUP => "hung up (SIGHUP)",
                        _ => "interrupted",
                    };
                    eprintln!(
                        "\n{name}: stopping the hosts' work and the run (Ctrl-C again to quit \
                         at once)"
                    );
                    chopsticks::interrupt();
                    std::thread::sleep(GRACE);
                    eprintln!("\nthe run did not stop within {} s", GRACE.as_secs());
                    quit(signal);
                }
            });
        if watcher.is_err() {
            return;
        }
        WAKE.store(fds[1], Ordering::SeqCst);
        // SAFETY: a zeroed sigaction with a handler of the right type.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            for signal in SIGNALS {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}
