//! Processes as `/proc` shows them: the agent's own, seen from inside by
//! `#[remote]` functions (who it runs as, from where, with how many
//! threads; what it leaves behind; how it ends), and this process's
//! children, which the tests check were not left behind (agents, `ssh`,
//! fake agents, zombies).

use std::fmt;
use std::io;
use std::path::PathBuf;

use chopsticks::remote;
use serde::{Deserialize, Serialize};

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

/// Whether the agent runs as root.
#[remote]
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
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

/// Exits the agent process with `code`, killing the call in flight.
#[remote]
pub fn exit_agent(code: i32) {
    eprintln!("about to exit with {code}");
    std::process::exit(code)
}

/// Kills the agent process with SIGKILL, as an OOM killer or an operator would.
#[remote]
pub fn kill_agent() {
    // SAFETY: signalling our own process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// One child process.
#[derive(Debug, Clone)]
pub struct Child {
    /// Its process ID.
    pub pid: u32,
    /// Its state letter (`R`, `S`, `Z` ...).
    pub state: String,
    /// What it runs (empty for a zombie, whose link is gone).
    pub exe: PathBuf,
    /// Its argument vector.
    pub argv: Vec<String>,
}

impl Child {
    /// Whether it exited and was not reaped.
    pub fn is_zombie(&self) -> bool {
        self.state == "Z"
    }

    /// Whether its program (`argv[0]`) is `ssh` and one of its arguments
    /// is `word`.
    pub fn is_ssh_to(&self, word: &str) -> bool {
        self.argv.first().is_some_and(|a| a.ends_with("ssh")) && self.argv.iter().any(|a| a == word)
    }
}

impl fmt::Display for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}", self.pid, self.state, self.argv.join(" "))
    }
}

/// This process's children, zombies included.
pub fn children() -> Vec<Child> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid ...
            let (_, rest) = stat.rsplit_once(") ")?;
            let mut fields = rest.split(' ');
            let state = fields.next()?.to_owned();
            if fields.next()? != me {
                return None;
            }
            let argv = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            Some(Child {
                pid,
                state,
                exe: std::fs::read_link(entry.path().join("exe")).unwrap_or_default(),
                argv: argv
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            })
        })
        .collect()
}

/// The chopsticks agents on this host (processes whose executable is a
/// cached agent, `chopsticks-UID/SHA256`) but those of `sha256`: `pid: exe`.
#[remote]
pub fn agents_other_than(sha256: String) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        let text = exe.to_string_lossy();
        let cached = exe
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d.to_string_lossy().starts_with("chopsticks-"));
        if cached && !text.contains(&sha256) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}
