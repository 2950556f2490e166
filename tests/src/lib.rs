//! `#[remote]` functions that the integration tests call through real
//! tunnels. They live in a library so that the test binaries and the fixture
//! binaries (`src/bin/`) register them under the same wire IDs.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use chopsticks::remote;
use serde::{Deserialize, Serialize};

pub mod children;
pub mod soak;

/// Returns its argument: one function per shape of data.
macro_rules! echoes {
    ($($name:ident: $ty:ty;)*) => {$(
        #[doc = concat!("Returns its `", stringify!($ty), "` argument unchanged.")]
        #[remote]
        pub fn $name(value: $ty) -> $ty {
            value
        }
    )*};
}

echoes! {
    echo_i64: i64;
    echo_u128: u128;
    echo_f64: f64;
    echo_string: String;
    echo_bytes: Vec<u8>;
    echo_vec: Vec<String>;
    echo_map: BTreeMap<String, Vec<i32>>;
    echo_option: Option<Inventory>;
    echo_tuple: (u8, char, bool, String);
    echo_inventory: Inventory;
}

/// A nested structure with enums inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub name: String,
    pub hosts: Vec<Host>,
    pub tags: BTreeMap<String, String>,
    pub weight: f32,
}

/// One host of an [`Inventory`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub addr: String,
    pub role: Role,
}

/// Unit, newtype, tuple and struct variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    Web,
    Db(u16),
    Cache(String, u32),
    Proxy { upstreams: Vec<String> },
}

/// The processes on the agent's host whose command line (or, where it may
/// be read, environment) contains `needle`: `pid: what`.
#[remote]
pub fn processes_mentioning(needle: String) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        for file in ["cmdline", "environ"] {
            let Ok(bytes) = std::fs::read(entry.path().join(file)) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains(&needle) {
                found.push(format!(
                    "{}: {file}: {text}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// What `/etc/cs-role` says on `t`'s host (`cs-inner` there; the test
/// hosts of `tests/setup.sh` that share a hostname are told apart by it).
///
/// # Panics
/// When the host has no such file.
pub fn role(t: &chopsticks::Tunnel) -> String {
    t.call(read_file, ("/etc/cs-role".into(),))
        .expect("/etc/cs-role on the host")
        .trim()
        .to_owned()
}

/// The machine the agent was built for, as Rust names it.
#[remote]
pub fn machine() -> String {
    std::env::consts::ARCH.to_owned()
}

/// Adds two numbers; several arguments.
#[remote]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Takes nothing, returns nothing.
#[remote]
pub fn nothing() {}

/// Length and a checksum of a large argument.
#[remote]
pub fn digest(data: Vec<u8>) -> (usize, u64) {
    let sum = data.iter().fold(0u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(*b))
    });
    (data.len(), sum)
}

/// A byte vector of `len` bytes.
#[remote]
pub fn make_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads a file: an `io::Result` that fails for a missing path.
#[remote]
pub fn read_file(path: String) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// Fails with a `String` error.
#[remote]
pub fn fail_with(message: String) -> Result<u32, String> {
    Err(message)
}

/// Fails with an `anyhow` error with context.
#[remote]
pub fn fail_anyhow(path: String) -> anyhow::Result<String> {
    use anyhow::Context;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text)
}

/// Fails with a std error that has a source.
#[remote]
pub fn fail_chained() -> Result<(), ConfigError> {
    Err(ConfigError(io::Error::new(
        io::ErrorKind::PermissionDenied,
        "disk says no",
    )))
}

/// An error with a source, for [`fail_chained`].
#[derive(Debug)]
pub struct ConfigError(io::Error);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot load the configuration")
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A `Result` alias that `#[remote]` cannot recognise by name.
pub type Outcome = Result<u8, String>;

/// Uses `#[remote(fallible)]` for an alias.
#[remote(fallible)]
pub fn checked_half(n: u8) -> Outcome {
    if n.is_multiple_of(2) {
        Ok(n / 2)
    } else {
        Err(format!("{n} is odd"))
    }
}

/// A type named `Result` that is not fallible, for `#[remote(plain)]`.
pub mod plain {
    use serde::{Deserialize, Serialize};

    /// Not `std::result::Result`.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub struct Result {
        pub passed: u32,
    }
}

/// Returns a struct named `Result` as it is.
#[remote(plain)]
pub fn score(passed: u32) -> plain::Result {
    plain::Result { passed }
}

/// Panics with a message.
#[remote]
pub fn explode(message: String) -> u8 {
    panic!("{message}")
}

/// Writes to stdout in every way a careless function might, then returns.
#[remote]
pub fn noisy() -> io::Result<String> {
    use std::io::Write;
    println!("println from a remote function");
    print!("no newline");
    io::stdout().flush()?;
    let raw = b"\x00\x00\x10\x00raw write to fd 1\n";
    // SAFETY: writing a valid buffer to fd 1.
    unsafe { libc::write(1, raw.as_ptr().cast(), raw.len()) };
    let status = std::process::Command::new("echo")
        .arg("hello from a child")
        .status()?;
    Ok(format!("child {status}"))
}

/// Sleeps, then returns how long it slept.
#[remote]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// What the agent's process looks like from inside.
#[remote]
pub fn agent_view() -> io::Result<AgentView> {
    let child_env = std::process::Command::new("sh")
        .args(["-c", "printf %s \"${CHOPSTICKS_AGENT-unset}\""])
        .output()?;
    let mut buf = [0u8; 1];
    // SAFETY: reading into a valid one-byte buffer from fd 0.
    let stdin_read = unsafe { libc::read(0, buf.as_mut_ptr().cast(), 1) };
    Ok(AgentView {
        pid: std::process::id(),
        env_agent: std::env::var("CHOPSTICKS_AGENT").ok(),
        child_env_agent: String::from_utf8_lossy(&child_env.stdout).into_owned(),
        stdin_read,
    })
}

/// See [`agent_view`].
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentView {
    pub pid: u32,
    pub env_agent: Option<String>,
    pub child_env_agent: String,
    pub stdin_read: isize,
}

/// Writes a line to stderr (forwarded to the controller as `[host] line`).
#[remote]
pub fn say(line: String) {
    eprintln!("{line}");
}

/// Exits the agent process with `code`, killing the call in flight.
#[remote]
pub fn exit_agent(code: i32) {
    eprintln!("about to exit with {code}");
    std::process::exit(code)
}

/// A map whose keys JSON cannot represent.
#[remote]
pub fn unjsonable() -> BTreeMap<(u8, u8), u8> {
    BTreeMap::from([((1, 2), 3)])
}

/// How many `#[remote]` functions this library defines; the registry of a
/// binary that links it holds at least these.
pub const FUNCTIONS: usize = 43;

/// One entry of a tree as [`tree_listing`] sees it: relative path (bytes), kind
/// (`d`, `f`, `l`), permission bits, and the content's SHA-256 (hex) or the
/// link's target.
pub type Entry = (Vec<u8>, char, u32, String);

/// Everything at and under `path` (bytes), in byte order of paths: what a
/// transfer wrote there, temporary files included. Links are not followed;
/// a missing path gives no entries.
#[remote]
pub fn tree_listing(path: Vec<u8>) -> Vec<Entry> {
    local_listing(std::path::Path::new(std::ffi::OsStr::from_bytes(&path)))
}

/// [`tree_listing`] on this machine.
pub fn local_listing(root: &std::path::Path) -> Vec<Entry> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &std::path::Path, rel: Vec<u8>, out: &mut Vec<Entry>) {
        let path = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(std::ffi::OsStr::from_bytes(&rel))
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            out.push((rel, 'l', 0, target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.push((rel.clone(), 'd', mode, String::new()));
            let mut names: Vec<Vec<u8>> = std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            for name in names {
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend(name);
                walk(root, child, out);
            }
        } else {
            let mut hasher = Sha256::new();
            if let Ok(mut file) = std::fs::File::open(&path) {
                let _ = std::io::copy(&mut file, &mut hasher);
            }
            let hex: String = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push((rel, 'f', mode, hex));
        }
    }
    let mut out = Vec::new();
    walk(root, Vec::new(), &mut out);
    out
}

/// Removes `path` and everything under it; a missing path is fine.
#[remote]
pub fn remove_tree(path: Vec<u8>) -> io::Result<()> {
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&path));
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes the call's input stream and never reads it: a peer that grants
/// no more credit than the first window.
#[remote]
pub fn hold_input(ms: u64) -> bool {
    let input = chopsticks::agent::stream::input();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    input.is_ok()
}

/// Reads the call's input stream to its end: its length and a checksum.
#[remote]
pub fn digest_input() -> io::Result<(usize, u64)> {
    use std::io::Read;
    let mut data = Vec::new();
    chopsticks::agent::stream::input()?.read_to_end(&mut data)?;
    Ok(digest(data))
}

/// Streams [`make_bytes`]`(len)` back; returns how many bytes it sent.
#[remote]
pub fn stream_bytes(len: usize) -> io::Result<usize> {
    use std::io::Write;
    let mut out = chopsticks::agent::stream::output()?;
    out.write_all(&make_bytes(len))?;
    out.flush()?;
    Ok(len)
}

/// The owner's name and the group ID of `path`.
#[remote]
pub fn owner_of(path: String) -> io::Result<(String, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let name = passwd
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&meta.uid().to_string()))
        .and_then(|l| l.split(':').next())
        .unwrap_or("?")
        .to_owned();
    Ok((name, meta.gid()))
}

/// Kills the agent process with SIGKILL, as an OOM killer or an operator would.
#[remote]
pub fn kill_agent() {
    // SAFETY: signalling our own process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// Whether process `pid` exists on this host (zombies count as gone).
#[remote]
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Where the agent runs from, and as whom.
#[remote]
pub fn whoami() -> io::Result<(String, u32)> {
    let exe = std::env::current_exe()?;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    Ok((exe.display().to_string(), uid))
}

/// The SHA-256 of the agent's own executable (as the host has it) and the
/// names of its active ELF sections (ELF64 little-endian only).
#[remote]
pub fn exe_sections() -> io::Result<(String, Vec<String>)> {
    use sha2::Digest;
    let elf = std::fs::read("/proc/self/exe")?;
    let hash = sha2::Sha256::digest(&elf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bad = || io::Error::other("not an ELF64 little-endian file");
    let num = |at: usize, len: usize| -> io::Result<usize> {
        let bytes = elf.get(at..at + len).ok_or_else(bad)?;
        Ok(bytes.iter().rev().fold(0, |n, b| n << 8 | *b as usize))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err(bad());
    }
    let (shoff, shnum, shstrndx) = (num(0x28, 8)?, num(0x3c, 2)?, num(0x3e, 2)?);
    let section = |i: usize| shoff + i * 64;
    let names_at = num(section(shstrndx) + 24, 8)?;
    let mut names = Vec::new();
    for i in 0..shnum {
        if num(section(i) + 4, 4)? == 0 {
            continue; // SHT_NULL: inactive
        }
        let name = names_at + num(section(i), 4)?;
        let end = elf[name..].iter().position(|b| *b == 0).ok_or_else(bad)?;
        names.push(String::from_utf8_lossy(&elf[name..name + end]).into_owned());
    }
    Ok((hash, names))
}

/// Writes `lines` lines of 100 bytes to stderr.
#[remote]
pub fn shout(lines: u32) {
    let line = "x".repeat(99);
    for _ in 0..lines {
        eprintln!("{line}");
    }
}

/// Whether the agent runs as root.
#[remote]
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

static JOURNAL: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Appends `entry` to this agent's journal.
#[remote]
pub fn journal_push(entry: u32) {
    JOURNAL.lock().unwrap().push(entry);
}

/// Empties this agent's journal and returns what it held, in order.
#[remote]
pub fn journal_take() -> Vec<u32> {
    std::mem::take(&mut *JOURNAL.lock().unwrap())
}

/// How many threads the agent process has.
#[remote]
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// Logs `message` at info level with the `log` crate.
#[remote]
pub fn log_info(message: String) {
    log::info!(target: "chopsticks_tests::remote", "{message}");
}

/// The ssh_config of the test hosts that `tests/setup.sh` starts
/// (`CHOPSTICKS_TEST_SSH_CONFIG`, or `target/testhosts/ssh_config`).
///
/// # Panics
/// When the file is missing, with what to run to get it.
pub fn test_ssh_config() -> std::path::PathBuf {
    let path = std::env::var_os("CHOPSTICKS_TEST_SSH_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts/ssh_config")
        });
    assert!(
        path.exists(),
        "no test hosts: {} is missing. Start them with `tests/setup.sh` (the README's test \
         command, ./ci.sh, does it), or point CHOPSTICKS_TEST_SSH_CONFIG at an ssh_config \
         that defines the cs-* hosts",
        path.display()
    );
    path
}

/// The name of the running test container for `host` (`deb12`, `deb11`,
/// `busybox`, `noexec`), as `tests/setup.sh` starts it.
///
/// # Panics
/// When the container does not run, with what to run to get it.
pub fn test_container(host: &str) -> String {
    let name = format!("chopsticks-test-{host}");
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", &name])
        .output();
    let running =
        matches!(&out, Ok(out) if String::from_utf8_lossy(&out.stdout).starts_with("true "));
    assert!(
        running,
        "the test container {name} does not run ({out:?}). Start the test hosts with \
         `tests/setup.sh` (the README's test command, ./ci.sh, does it); it needs a running \
         Docker engine"
    );
    name
}

/// The host PID of the main process of the running test container for
/// `host`, to enter its namespaces with `nsenter -t PID`.
pub fn test_container_pid(host: &str) -> String {
    let name = test_container(host);
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", &name])
        .output()
        .expect("run docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fixture agent that runs on old-glibc hosts (a static musl build, or
/// one linked against glibc 2.28), which `tests/setup.sh` puts beside the
/// test hosts' ssh_config.
pub fn portable_fixture() -> std::path::PathBuf {
    let path = test_ssh_config().with_file_name("agents").join("fixture");
    assert!(
        path.exists(),
        "no portable agent at {}: run `tests/setup.sh` (the README's test command does); it \
         builds the fixture for x86_64-unknown-linux-musl (rustup target add) or, failing \
         that, against glibc 2.28 with cargo-zigbuild",
        path.display()
    );
    path
}

/// A setting of the test hosts from the `env` file `tests/setup.sh` writes
/// beside their ssh_config (`CHOPSTICKS_TEST_FLEET_PORT` ...).
///
/// # Panics
/// When the file or the setting is missing, with what to run to get it.
pub fn test_env(key: &str) -> String {
    let path = test_ssh_config().with_file_name("env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run `tests/setup.sh`", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no {key} in {}; run `tests/setup.sh`", path.display()))
}

/// Opens a local tunnel and calls itself there, `levels` times: the depth
/// the last agent sits at, or the error that stopped the nesting.
#[remote]
pub fn nest(levels: u32, max_depth: Option<u32>) -> Result<u32, String> {
    if levels == 0 {
        return Ok(chopsticks::agent::depth());
    }
    let mut builder = chopsticks::TunnelBuilder::local();
    if let Some(max) = max_depth {
        builder = builder.max_depth(max);
    }
    let t = builder.connect().map_err(|e| e.to_string())?;
    t.call(nest, (levels - 1, max_depth))
        .map_err(|e| e.to_string())
}

/// Starts `sleep SECONDS` in the background with the agent's stderr, and
/// returns: the child keeps the agent's stderr open after the agent exits.
#[remote]
pub fn leave_child(seconds: u32) -> io::Result<u32> {
    let child = std::process::Command::new("sleep")
        .arg(seconds.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    Ok(child.id())
}

/// The tunnel a fixture binary's arguments name: `SSH_CONFIG HOST`, or a
/// local tunnel without arguments.
///
/// # Errors
/// When it cannot connect.
pub fn tunnel_from_args() -> chopsticks::Result<chopsticks::Tunnel> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [config, host] => chopsticks::Tunnel::builder(host)
            .ssh_config(config)
            .connect(),
        _ => chopsticks::Tunnel::local(),
    }
}

/// What the `hostile` fixture, a fake agent, writes once it was called:
/// pieces of the protocol, well and badly formed, then its end.
pub mod hostile {
    use serde::{Deserialize, Serialize};

    /// One piece of what the fake agent writes after a call arrived.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub enum Piece {
        /// These bytes, as they are.
        Bytes(Vec<u8>),
        /// These bytes as one frame (a length, then them).
        Frame(Vec<u8>),
        /// A frame header announcing this length, and nothing after it.
        Announce(u32),
        /// A reply to the call, or to request `other`: JSON, or an error.
        Reply {
            /// Another request ID than the call's.
            other: Option<u64>,
            /// The JSON text of the value, or the error's message.
            result: Result<String, String>,
        },
        /// A log record.
        Log {
            /// Its level on the wire (1 = error ... 5 = trace).
            level: u8,
            /// Its target.
            target: String,
            /// Its message.
            message: String,
        },
        /// Output stream bytes for the call, or for request `other`.
        Data {
            /// Another request ID than the call's.
            other: Option<u64>,
            /// The bytes.
            bytes: Vec<u8>,
        },
        /// Input stream credit for the call, or for request `other`.
        Credit {
            /// Another request ID than the call's.
            other: Option<u64>,
            /// How many bytes.
            bytes: u64,
        },
        /// A second hello.
        Hello,
    }

    /// All the fake agent does after the call arrived.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Plan {
        /// What it writes.
        pub pieces: Vec<Piece>,
        /// Whether it then exits (or stalls, reading on, until killed).
        pub exit: bool,
    }

    impl Plan {
        /// The plan as one command-line argument.
        pub fn to_arg(&self) -> String {
            let bytes = postcard::to_allocvec(self).expect("a plan encodes");
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }

        /// The plan [`Plan::to_arg`] made.
        pub fn from_arg(arg: &str) -> Option<Plan> {
            let bytes: Option<Vec<u8>> = (0..arg.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(arg.get(i..i + 2)?, 16).ok())
                .collect();
            postcard::from_bytes(&bytes?).ok()
        }
    }
}
