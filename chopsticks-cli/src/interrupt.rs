//! Ctrl-C in a kit tool: the first stops the run (no new host or batch
//! starts, the calls in flight are cancelled on their hosts, the recap
//! names the interrupted hosts, the tool exits 130); a second one exits at
//! once.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Once;

/// The write end of the pipe the handler wakes the watcher through.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// How many times SIGINT arrived.
static HITS: AtomicU32 = AtomicU32::new(0);

/// What SIGINT runs: only what is async-signal-safe (an atomic, `write`,
/// `_exit`).
extern "C" fn on_sigint(_: libc::c_int) {
    if HITS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write is async-signal-safe; `byte` outlives the call.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
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
                    eprintln!(
                        "\ninterrupted: stopping the hosts' work and the run (Ctrl-C again to \
                         quit at once)"
                    );
                    chopsticks::interrupt();
                }
            });
        if watcher.is_err() {
            return;
        }
        WAKE.store(fds[1], Ordering::SeqCst);
        // SAFETY: a zeroed sigaction with a handler of the right type.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        }
    });
}
