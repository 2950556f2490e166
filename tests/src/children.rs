//! This process's child processes as `/proc` shows them: what the tests
//! check was left behind (agents, `ssh`, fake agents, zombies).

use std::fmt;
use std::path::PathBuf;

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
