//! Opening a connection: the I/O thread starts and greets the agent while
//! this thread waits, bounded, then checks the hello and makes the `Conn`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::transport::Link;
use super::transport::{set_nonblocking, wait_exit, wake_pipe, Transport};
use super::{io, Conn, Outgoing, State, LAST_WORDS};
use crate::error::Error;
use crate::tunnel::start::greet::{Event, Greeter};
use crate::tunnel::start::stderr::{Lines, Tail};
use crate::tunnel::start::{advice, Failed, Refusal, Ship};
use crate::wire::{self, Hello};

/// How to greet one agent that a kind of tunnel started.
pub(crate) struct Launch {
    pub host: String,
    /// For error messages: what was started.
    pub program: String,
    pub link: Link,
    pub nonce: String,
    /// Bound on reaching the agent's hello, upload excluded.
    pub connect_timeout: Duration,
    /// Bound on an upload, when the bootstrap asks for one.
    pub upload_timeout: Duration,
    /// What to upload when asked.
    pub ship: Option<Ship>,
    /// What the kind makes of a failed start, before the shared advice.
    pub advice: advice::KindAdvice,
    /// The advice when nothing more specific fits.
    pub fallback: &'static str,
    /// Answers sudo's password prompt in the bootstrap, when it runs sudo.
    pub sudo_password: Option<crate::passwords::Source>,
    /// How deep the agent sits.
    pub depth: u32,
    /// Whether the agent was started check-only.
    pub check_only: bool,
}

impl Conn {
    /// Greets the agent `launch` started and starts the tunnel's I/O thread.
    ///
    /// # Errors
    /// The explained reason when no hello arrived.
    pub(crate) fn start(launch: Launch) -> std::result::Result<Arc<Conn>, Error> {
        let Launch {
            host,
            program,
            link,
            nonce,
            connect_timeout,
            upload_timeout,
            ship,
            advice,
            fallback,
            sudo_password,
            depth,
            check_only,
        } = launch;
        let mut transport = link.transport;
        // The agent must be started for what was shipped: the bootstrap
        // tells it the hash it checked, and the hello says it back. (The
        // agent does not hash itself: a host that lies can lie here too.)
        let shipped = ship.as_ref().map(Ship::hashes);
        let started = start_io(
            &host,
            link.to_agent,
            link.from_agent,
            link.stderr,
            &nonce,
            ship,
            sudo_password,
        );
        let Started {
            events,
            conn_tx,
            wake,
            tail,
        } = match started {
            Ok(started) => started,
            Err(e) => {
                transport.kill();
                return Err(Error::Spawn {
                    host,
                    program,
                    source: Arc::new(e),
                });
            }
        };
        // Giving up, this thread stops the agent and wakes the I/O thread,
        // which then reads the agent's last stderr lines and ends (a
        // process that outlives the one we started may hold its output open).
        let give_up = |transport: &mut Box<dyn Transport>| {
            transport.kill();
            let _ = (&wake).write(&[1]);
        };
        let fail = |transport: &mut Box<dyn Transport>, refusal: Refusal| {
            let status = wait_exit(transport.as_mut(), LAST_WORDS);
            give_up(transport);
            let stderr = tail.lines_after_eof(LAST_WORDS);
            let failed = Failed {
                refusal,
                status,
                stderr,
            };
            advice::explain(&host, failed, advice, fallback)
        };
        let greeted = greeting(&events, connect_timeout, upload_timeout).and_then(
            |(hello, to_agent, uploaded)| Ok((known(&hello)?, hello, to_agent, uploaded)),
        );
        let (known, hello, to_agent, uploaded) = match greeted {
            Ok(greeted) => greeted,
            Err(Unusable::Refused(refusal)) => return Err(fail(&mut transport, refusal)),
            Err(Unusable::Interrupted) => {
                give_up(&mut transport);
                return Err(Error::Interrupted {
                    host,
                    function: None,
                });
            }
            Err(Unusable::Ours(message)) => {
                give_up(&mut transport);
                let stderr = Vec::new();
                return Err(Error::Handshake {
                    host,
                    message,
                    stderr,
                });
            }
        };
        if let Some(shipped) = shipped.filter(|s| !s.contains(&hello.exe_sha256)) {
            let shipped = shipped.join(" or ");
            give_up(&mut transport);
            let runs = match hello.exe_sha256.as_str() {
                "" => "no executable hash".to_owned(),
                other => format!("the executable {other}"),
            };
            return Err(Error::Handshake {
                host,
                message: format!(
                    "the agent was started for {runs}, but this program sent {shipped}: \
                     something between the bootstrap and the agent (a wrapper or shell that \
                     changes the command?) started it otherwise; nothing was called"
                ),
                stderr: Vec::new(),
            });
        }
        tail.go_live();
        let conn = Arc::new(Conn {
            host,
            state: Mutex::new(State::default()),
            out: Mutex::new(Outgoing::new(to_agent)),
            queued: AtomicBool::new(false),
            corked: AtomicBool::new(false),
            watched: AtomicBool::new(false),
            wake,
            next_req: AtomicU64::new(1),
            call_timeout: AtomicU64::new(u64::MAX),
            transport: Mutex::new(transport),
            closing: AtomicBool::new(false),
            known,
            hello,
            uploaded,
            depth,
            check_only,
            tail,
        });
        // The I/O thread waits for this, so it cannot fail.
        let _ = conn_tx.send(Arc::clone(&conn));
        super::interrupt::register(&conn);
        super::corks::start();
        Ok(conn)
    }
}

/// The I/O thread of a starting agent, and how to reach it.
struct Started {
    /// What the handshake says.
    events: mpsc::Receiver<Event>,
    /// Where the connection goes once it is made.
    conn_tx: mpsc::Sender<Arc<Conn>>,
    /// A byte here wakes the I/O thread.
    wake: File,
    tail: Arc<Tail>,
}

/// Starts the I/O thread, which greets the agent.
fn start_io(
    host: &str,
    to_agent: File,
    from_agent: File,
    stderr: File,
    nonce: &str,
    ship: Option<Ship>,
    sudo_password: Option<crate::passwords::Source>,
) -> std::io::Result<Started> {
    let (wake_rx, wake) = wake_pipe()?;
    // Nobody blocks on the agent's input: the I/O thread writes what
    // callers could not write at once, and the upload.
    set_nonblocking(&to_agent)?;
    chopsticks_agent::flow::widen_pipe(&to_agent);
    chopsticks_agent::flow::widen_pipe(&from_agent);
    let tail = Arc::new(Tail::default());
    let streams = io::Streams {
        frames: super::frames::Frames::new(from_agent),
        stderr: Some(Lines::new(host, stderr, Arc::clone(&tail))),
        wake: wake_rx,
    };
    let (events_tx, events) = mpsc::channel::<Event>();
    let (conn_tx, conn_rx) = mpsc::channel::<Arc<Conn>>();
    let greeting = io::Greeting {
        greeter: Greeter::new(nonce),
        to_agent,
        ship,
        sudo_password: sudo_password.map(|source| (host.to_owned(), source)),
        events: events_tx,
        conn: conn_rx,
    };
    thread::Builder::new()
        .name(format!("chopsticks-{host}"))
        .spawn(move || io::run(streams, greeting))?;
    Ok(Started {
        events,
        conn_tx,
        wake,
        tail,
    })
}

/// Why a greeted agent cannot be used.
enum Unusable {
    /// The agent's fault, or no greeting at all.
    Refused(Refusal),
    /// This program's own registry is broken.
    Ours(String),
    /// The program was interrupted meanwhile.
    Interrupted,
}

/// How often a connection being made looks whether the program was
/// interrupted.
const INTERRUPT_POLL: Duration = Duration::from_millis(100);

/// Waits for the greeting: `connect_timeout`, then `upload_timeout` once
/// an upload starts.
fn greeting(
    events: &mpsc::Receiver<Event>,
    connect_timeout: Duration,
    upload_timeout: Duration,
) -> std::result::Result<(Hello, File, bool), Unusable> {
    let mut bound = connect_timeout;
    let mut uploading = false;
    let mut since = std::time::Instant::now();
    loop {
        // Waited in slices: an interrupted program stops connecting.
        let left = bound.saturating_sub(since.elapsed());
        let event = match events.recv_timeout(left.min(INTERRUPT_POLL)) {
            Err(mpsc::RecvTimeoutError::Timeout) if super::interrupted() => {
                return Err(Unusable::Interrupted)
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => continue,
            other => other,
        };
        match event {
            Ok(Event::Uploading) => {
                bound = upload_timeout;
                since = std::time::Instant::now();
                uploading = true;
            }
            Ok(Event::Done(greeting)) => return greeting.map_err(Unusable::Refused),
            // The host was reached if it asked for the agent: say so, and it
            // is not taken for a connection that never came up.
            Err(_) if uploading => {
                let message = format!(
                    "the upload of the agent did not finish within {bound:?} (the upload \
                     timeout); it was stopped"
                );
                return Err(Unusable::Refused(Refusal::Agent(message)));
            }
            Err(_) => {
                let message = format!("no answer within {bound:?}; it was stopped");
                return Err(Unusable::Refused(Refusal::Agent(message)));
            }
        }
    }
}

/// The agent's functions when its registry differs from ours (`None` when
/// it is the same), once its protocol is ours.
fn known(hello: &Hello) -> std::result::Result<Option<HashSet<u64>>, Unusable> {
    if hello.protocol != wire::PROTOCOL_VERSION {
        return Err(Unusable::Refused(Refusal::Stale(
            crate::tunnel::start::greet::protocol_mismatch(hello.protocol, Some(&hello.version)),
        )));
    }
    let ours = crate::agent::Registry::get()
        .map_err(|e| Unusable::Ours(format!("this program's own registry is broken: {e}")))?;
    Ok(
        (hello.fingerprint != ours.fingerprint())
            .then(|| hello.functions.iter().copied().collect()),
    )
}
