//! Where the shared connection of an ssh tunnel listens, known without
//! starting `ssh`.
//!
//! With `control_persist`, `ssh` names its master's socket `%C`: a hash of
//! the host, port and user *as its configuration resolves them*. Only `ssh`
//! can resolve them, and starting it to ask costs what a session through
//! the master costs. So the answer is remembered: when a tunnel starts
//! `ssh` for a host, `ssh -G` says the socket's path, and a symlink in the
//! private control directory records it under a name made of everything
//! the answer depends on (the `ssh` program, the arguments but the remote
//! command, and the identity, size and times of every configuration file
//! `ssh` reads for them, `Include`s too). A later tunnel with the same
//! arguments and configuration finds the link and opens its session on the
//! master itself ([`super::mux`]). An edited configuration file names
//! another link, learned anew. A configuration whose answer depends on more
//! than files (`Match exec`, `Match localnetwork`) is never remembered.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How deep `Include`s nest (ssh's own limit).
const MAX_DEPTH: usize = 16;
/// A configuration file larger than this is not read for `Include`s, and
/// the master not remembered.
const MAX_CONFIG: u64 = 1024 * 1024;
/// The files a configuration may reach through `Include`s.
const MAX_FILES: usize = 256;
/// What names the links (the sockets are ssh's own `%C`, 40 hex digits).
const PREFIX: &str = "m-";

/// The link that names the master of `ssh` run with `args` (without the
/// remote command) in the control directory `dir`; `None` when the
/// configuration is not only files, or cannot be read.
pub(super) fn link(dir: &Path, ssh: &Path, args: &[OsString]) -> Option<PathBuf> {
    let mut hash = Sha256::new();
    let mut put = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    put(ssh.as_os_str().as_bytes());
    for arg in args {
        put(arg.as_bytes());
    }
    let mut files = Vec::new();
    for (root, base) in roots(args)? {
        reach(&root, &base, 0, &mut files)?;
    }
    for (path, identity) in &files {
        put(path.as_os_str().as_bytes());
        put(identity.as_bytes());
    }
    let digest = hash.finalize();
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(format!("{PREFIX}{name}")))
}

/// Records that `link` names the master at `socket` (what `ssh -G` said
/// its `controlpath` is). A link another tunnel made at the same time
/// stays.
pub(super) fn remember(link: &Path, socket: &str) {
    if socket == "none" || socket.is_empty() {
        return;
    }
    prune_once(link.parent());
    let _ = std::os::unix::fs::symlink(socket, link);
}

/// Removes, once per process, the links whose master is gone and that no
/// configuration names any more: they would only pile up.
fn prune_once(dir: Option<&Path>) {
    static PRUNED: std::sync::Once = std::sync::Once::new();
    let Some(dir) = dir else { return };
    PRUNED.call_once(|| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = entry.file_name().as_bytes().starts_with(PREFIX.as_bytes());
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            // A dangling link: its master exited, and the next `ssh` for
            // the same configuration recreates it at the same path, so
            // only links older than a day go.
            let stale = std::fs::symlink_metadata(&path).is_ok_and(|m| {
                m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 24 * 3600)
            });
            if ours && is_link && stale && !path.exists() {
                let _ = std::fs::remove_file(&path);
            }
        }
    });
}

/// The configuration files `ssh` reads for `args`, each with the directory
/// its relative `Include`s start from: `-F FILE` alone, or the user's and
/// the system's; `None` without a home directory.
fn roots(args: &[OsString]) -> Option<Vec<(PathBuf, PathBuf)>> {
    let ssh_dir = PathBuf::from(std::env::var_os("HOME")?).join(".ssh");
    let given = args
        .windows(2)
        .find(|w| w[0] == "-F")
        .map(|w| PathBuf::from(&w[1]));
    Some(match given {
        Some(file) if file.as_os_str() == "none" => Vec::new(),
        Some(file) => vec![(expand(&file, &ssh_dir), ssh_dir)],
        None => vec![
            (ssh_dir.join("config"), ssh_dir),
            (
                PathBuf::from("/etc/ssh/ssh_config"),
                PathBuf::from("/etc/ssh"),
            ),
        ],
    })
}

/// Adds `file` and what it includes to `files`, each with its identity
/// (device, inode, size, change times; `-` when missing). `None` when the
/// configuration cannot stand for the answer: `Match exec` or
/// `localnetwork`, a file too large or unreadable, nesting too deep.
fn reach(file: &Path, base: &Path, depth: usize, files: &mut Vec<(PathBuf, String)>) -> Option<()> {
    if depth > MAX_DEPTH || files.len() >= MAX_FILES {
        return None;
    }
    let Ok(meta) = std::fs::metadata(file) else {
        files.push((file.to_owned(), "-".into()));
        return Some(());
    };
    if meta.len() > MAX_CONFIG {
        return None;
    }
    files.push((
        file.to_owned(),
        format!(
            "{} {} {} {}.{} {}.{}",
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ),
    ));
    let text = std::fs::read(file).ok()?;
    for line in text.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword.to_ascii_lowercase().as_str() {
            "match" => {
                let beyond_files = words.any(|w| {
                    let w = w.trim_start_matches('!').to_ascii_lowercase();
                    w == "exec" || w == "localnetwork"
                });
                if beyond_files {
                    return None;
                }
            }
            "include" => {
                for pattern in words {
                    let pattern = expand(Path::new(pattern.trim_matches('"')), base);
                    // The pattern itself counts: a file added to match it
                    // changes what it includes.
                    files.push((pattern.clone(), "include".into()));
                    for included in glob(&pattern)? {
                        reach(&included, base, depth + 1, files)?;
                    }
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// `path` with a leading `~/` made the home directory and a relative path
/// made relative to `base`, as ssh reads configuration paths.
fn expand(path: &Path, base: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        let home = std::env::var_os("HOME").unwrap_or_default();
        return PathBuf::from(home).join(rest);
    }
    match path.is_absolute() {
        true => path.to_owned(),
        false => base.join(path),
    }
}

/// The paths matching `pattern`, sorted (`glob(3)`, as ssh expands an
/// `Include`); `None` when it cannot be expanded.
fn glob(pattern: &Path) -> Option<Vec<PathBuf>> {
    let c = CString::new(pattern.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero glob_t is the empty state glob(3) fills in.
    let mut found: libc::glob_t = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated pattern and a glob_t we own; freed below.
    let rc = unsafe { libc::glob(c.as_ptr(), 0, None, &mut found) };
    let paths = match rc {
        0 => (0..found.gl_pathc)
            .map(|i| {
                // SAFETY: glob(3) set gl_pathc valid NUL-terminated paths.
                let p = unsafe { CStr::from_ptr(*found.gl_pathv.add(i)) };
                PathBuf::from(OsStr::from_bytes(p.to_bytes()))
            })
            .collect(),
        libc::GLOB_NOMATCH => Vec::new(),
        _ => {
            // SAFETY: as above; globfree takes a failed glob_t too.
            unsafe { libc::globfree(&mut found) };
            return None;
        }
    };
    // SAFETY: the glob_t glob(3) filled.
    unsafe { libc::globfree(&mut found) };
    Some(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: &Path) -> Vec<OsString> {
        ["-F".into(), config.into(), "--".into(), "web1".into()].to_vec()
    }

    #[test]
    fn an_edited_configuration_names_another_link() {
        let dir = std::env::temp_dir().join(format!("cs-masters-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        let config = dir.join("config");
        // (A relative Include of a user's file, as `-F` gives, starts in ~/.ssh.)
        let include = format!("Include {}/conf.d/*.conf\n", dir.display());
        std::fs::write(&config, include + "Host web1\n  Port 22\n").unwrap();
        let ssh = Path::new("ssh");
        let first = link(&dir, ssh, &args(&config)).unwrap();
        assert_eq!(link(&dir, ssh, &args(&config)), Some(first.clone()));
        assert!(first.file_name().unwrap().len() <= 2 + 32);
        // Other arguments, another link.
        let mut other = args(&config);
        other.push("-p2222".into());
        assert_ne!(link(&dir, ssh, &other).unwrap(), first);
        // A file added where an Include looks.
        std::fs::write(
            dir.join("conf.d/a.conf"),
            "Host web1\n  HostName 10.0.0.9\n",
        )
        .unwrap();
        let added = link(&dir, ssh, &args(&config)).unwrap();
        assert_ne!(added, first);
        // That file edited.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(
            dir.join("conf.d/a.conf"),
            "Host web1\n  HostName 10.0.0.8\n",
        )
        .unwrap();
        assert_ne!(link(&dir, ssh, &args(&config)).unwrap(), added);
        // An answer that depends on more than files is never remembered.
        std::fs::write(
            dir.join("conf.d/b.conf"),
            "Match host web1 exec \"on-vpn\"\n",
        )
        .unwrap();
        assert_eq!(link(&dir, ssh, &args(&config)), None);
        std::fs::write(
            dir.join("conf.d/b.conf"),
            "Match !localnetwork 10.0.0.0/8\n",
        )
        .unwrap();
        assert_eq!(link(&dir, ssh, &args(&config)), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn includes_that_loop_are_not_followed_forever() {
        let dir = std::env::temp_dir().join(format!("cs-masters-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config");
        std::fs::write(&config, format!("Include {}\n", config.display())).unwrap();
        assert_eq!(link(&dir, Path::new("ssh"), &args(&config)), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
