//! `#[remote]` functions of every shape a call can take: values in and out,
//! errors of each kind, panics, noise on stdout and stderr, slow calls, state
//! kept between calls, log records and nested tunnels.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use chopsticks::remote;
use serde::{Deserialize, Serialize};

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

/// A map whose keys JSON cannot represent.
#[remote]
pub fn unjsonable() -> BTreeMap<(u8, u8), u8> {
    BTreeMap::from([((1, 2), 3)])
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

/// Writes a line to stderr (forwarded to the controller as `[host] line`).
#[remote]
pub fn say(line: String) {
    eprintln!("{line}");
}

/// Writes `lines` lines of 100 bytes to stderr.
#[remote]
pub fn shout(lines: u32) {
    let line = "x".repeat(99);
    for _ in 0..lines {
        eprintln!("{line}");
    }
}

/// Logs `message` at info level with the `log` crate.
#[remote]
pub fn log_info(message: String) {
    log::info!(target: "chopsticks_tests::remote", "{message}");
}

/// Sleeps, then returns how long it slept.
#[remote]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
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

/// Waits up to `max_ms` for its call to be cancelled (polling
/// `agent::cancelled`); when it is, writes `seen` and returns `true`.
#[remote]
pub fn until_cancelled(seen: String, max_ms: u64) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(max_ms) {
        if chopsticks::agent::cancelled() {
            let _ = std::fs::write(&seen, b"cancelled");
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

/// Swaps the directory `dir` for a link to `outside` and back, as fast as
/// it can, for `ms` milliseconds; returns how many times it swapped.
#[remote]
pub fn swap_dir_for_link(dir: String, outside: String, ms: u64) -> u64 {
    let (dir, aside) = (std::path::PathBuf::from(&dir), format!("{dir}.aside"));
    let start = std::time::Instant::now();
    let mut swaps = 0;
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        if std::fs::rename(&dir, &aside).is_ok() {
            let _ = std::os::unix::fs::symlink(&outside, &dir);
            std::thread::yield_now();
            let _ = std::fs::remove_file(&dir);
            let _ = std::fs::rename(&aside, &dir);
            swaps += 1;
        } else {
            std::thread::yield_now();
        }
    }
    swaps
}
