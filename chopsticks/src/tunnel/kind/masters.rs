//! Where the shared connection of an ssh tunnel listens, known without
//! starting `ssh`.
//!
//! With `control_persist`, `ssh` names its master's socket `%C`: a hash of
//! the host, port and user *as its configuration resolves them*. Only `ssh`
//! can resolve them, and starting it to ask costs what a session through
//! the master costs. So the answer is remembered: when a tunnel starts
//! `ssh` for a host, `ssh -v -G` says the socket's path (and which
//! variables the session sends), and a record in the private control
//! directory keeps it under a name made of everything the answer depends
//! on: the `ssh` program, the arguments but the remote command, `HOME`, and
//! the contents of every configuration file `ssh` reads for them,
//! `Include`s too. A later tunnel with the same arguments and configuration
//! finds the record and opens its session on the master itself
//! ([`super::mux`]); an edited configuration file names another record,
//! learned anew.
//!
//! Nothing is remembered where the answer may depend on more than those
//! files, or where a session on the master would differ from one `ssh`
//! asks for: `Match` on anything but names (`exec`, `localnetwork`,
//! `canonical`, `version` ...), environment variables or `%` tokens in
//! `Include`, a file `ssh` read that this module did not (another system
//! configuration), agent or X11 forwarding.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How deep `Include`s nest (ssh's own limit).
const MAX_DEPTH: usize = 16;
/// A configuration file larger than this is not read for `Include`s, and
/// the master not remembered.
const MAX_CONFIG: u64 = 1024 * 1024;
/// The files a configuration may reach through `Include`s.
const MAX_FILES: usize = 256;
/// What names the records (the sockets are ssh's own `%C`, 40 hex digits).
const PREFIX: &str = "m-";
/// What names the notes of a record's login shell (`s-` and its hash).
const SHELL_PREFIX: &str = "s-";
/// The login shells that run the bootstrap script as `sh` would: where a
/// host logs in with one of them, the script goes without `exec /bin/sh
/// -c`, one program start fewer per session.
const POSIX_SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "ksh", "ksh93", "mksh"];
/// The `Match` criteria that depend on names only (the host and users as
/// given and configured, `-P` tags); `all` takes no argument.
const NAME_CRITERIA: &[&str] = &["host", "originalhost", "user", "localuser", "tagged"];

/// Where a tunnel's master is recorded, and the configuration files its
/// name stands for.
pub(super) struct Key {
    pub record: PathBuf,
    files: Vec<PathBuf>,
}

/// A master as recorded: its socket and the `SendEnv` patterns of the
/// configuration that started it.
pub(super) struct Master {
    pub socket: PathBuf,
    send_env: Vec<String>,
}

impl Master {
    /// The variables of this environment a session sends, as `ssh` would
    /// (its `SendEnv`; the master sets its own `SetEnv`).
    pub fn env(&self) -> Vec<OsString> {
        std::env::vars_os()
            .filter(|(name, _)| {
                let name = name.to_string_lossy();
                self.send_env.iter().any(|p| wildcard(p, &name))
            })
            .map(|(name, value)| {
                let mut var = name;
                var.push("=");
                var.push(value);
                var
            })
            .collect()
    }
}

/// The key of `ssh` run with `args` (without the remote command) in the
/// control directory `dir`; `None` when the configuration may depend on
/// more than files, or cannot be read.
pub(super) fn key(dir: &Path, ssh: &Path, args: &[OsString]) -> Option<Key> {
    let mut hash = Sha256::new();
    let mut put = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    put(ssh.as_os_str().as_bytes());
    for arg in args {
        put(arg.as_bytes());
    }
    put(std::env::var_os("HOME")?.as_bytes());
    let mut files = Vec::new();
    for (root, base) in roots(args)? {
        reach(&root, &base, 0, &mut files)?;
    }
    for (path, contents) in &files {
        put(path.as_os_str().as_bytes());
        put(contents);
    }
    let digest = hash.finalize();
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(Key {
        record: dir.join(format!("{PREFIX}{name}")),
        files: files.into_iter().map(|(path, _)| path).collect(),
    })
}

/// The master `record` names, when one was recorded.
pub(super) fn recall(record: &Path) -> Option<Master> {
    let text = std::fs::read_to_string(record).ok()?;
    let mut socket = None;
    let mut send_env = Vec::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("controlpath", path)) => socket = Some(PathBuf::from(path)),
            Some(("sendenv", pattern)) => send_env.push(pattern.to_owned()),
            _ => {}
        }
    }
    Some(Master {
        socket: socket?,
        send_env,
    })
}

/// Records the master of `key` from what `ssh -v -G` said: its
/// configuration (`config`) and, in `debug`, the files it read. Nothing is
/// recorded when it read a file the key does not stand for, forwards the
/// agent or X11, or shares no connection.
pub(super) fn remember(key: &Key, config: &str, debug: &str) {
    let value = |name: &str| setting(config, name);
    // ssh names a relative `-F` file as it was given: it opened it from the
    // working directory it shares with this program, as the key did.
    let here = std::env::current_dir().unwrap_or_default();
    let read_unknown = debug.lines().any(|line| {
        line.split_once("Reading configuration data ")
            .is_some_and(|(_, file)| !key.files.contains(&here.join(file.trim())))
    });
    let forwards = ["forwardagent", "forwardx11"]
        .iter()
        .any(|k| value(k).is_some_and(|v| v != "no"));
    let Some(socket) = value("controlpath").filter(|s| *s != "none" && !s.is_empty()) else {
        return;
    };
    if read_unknown || forwards {
        return;
    }
    let mut text = format!("controlpath {socket}\n");
    for line in config.lines().filter(|l| l.starts_with("sendenv ")) {
        text.push_str(line);
        text.push('\n');
    }
    prune_once(key.record.parent());
    // Written whole, then renamed: a tunnel reads all of it or none.
    let partial = key
        .record
        .with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&partial, text).is_ok() {
        let _ = std::fs::rename(&partial, &key.record);
    }
    let _ = std::fs::remove_file(&partial);
}

/// The value of `key` in `ssh -G` output (`key value` lines).
pub(super) fn setting<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

/// Whether `text` matches `pattern`, ssh's wildcards: `*` any run, `?` any
/// one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The last `*` seen and where in `text` it stands now.
    let (mut pi, mut ti, mut star) = (0, 0, None);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The login shell that `SHELL` names where the agent runs (sshd sets it
/// from the user's entry in the password database).
#[crate::remote]
pub fn login_shell() -> Option<String> {
    std::env::var("SHELL").ok()
}

/// Where the login shell of the host of the master `link` records is noted.
fn shell_note(link: &Path) -> Option<PathBuf> {
    let name = link.file_name()?.to_str()?.strip_prefix(PREFIX)?;
    Some(link.with_file_name(format!("{SHELL_PREFIX}{name}")))
}

/// What a tunnel noted of the login shell of `link`'s host: `Some(true)`
/// for a POSIX shell, `None` when nothing was noted.
pub(super) fn posix_login(link: &Path) -> Option<bool> {
    let shell = std::fs::read_link(shell_note(link)?).ok()?;
    let name = shell.file_name()?.to_str()?;
    Some(POSIX_SHELLS.contains(&name))
}

/// Notes that the host behind `link` logs in with `shell` (what
/// [`login_shell`] said there).
pub(super) fn remember_shell(link: &Path, shell: &str) {
    if let Some(note) = shell_note(link).filter(|_| !shell.is_empty()) {
        let _ = std::os::unix::fs::symlink(shell, note);
    }
}

/// Forgets the login shell noted for `link`: it did not run the script.
pub(super) fn forget_shell(link: &Path) {
    if let Some(note) = shell_note(link) {
        let _ = std::fs::remove_file(note);
    }
}

/// Removes, once per process, the records whose master has been gone
/// for a day (another `ssh` for the same configuration makes it again at
/// the same path, and the record holds): they would only pile up.
fn prune_once(dir: Option<&Path>) {
    static PRUNED: std::sync::Once = std::sync::Once::new();
    let Some(dir) = dir else { return };
    PRUNED.call_once(|| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let day = std::time::Duration::from_secs(24 * 3600);
        for entry in entries.flatten() {
            let path = entry.path();
            if !entry.file_name().as_bytes().starts_with(PREFIX.as_bytes()) {
                continue;
            }
            let old = std::fs::symlink_metadata(&path).is_ok_and(|m| {
                m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > day)
            });
            let gone = recall(&path).is_none_or(|m| !m.socket.exists());
            if old && gone {
                let _ = std::fs::remove_file(&path);
                forget_shell(&path);
            }
        }
    });
}

/// The configuration files `ssh` reads for `args`, each with the directory
/// its relative `Include`s start from: `-F FILE` alone (relative to the
/// working directory, as ssh opens it), or the user's (in the home
/// directory of the password database, as ssh finds it) and the system's.
fn roots(args: &[OsString]) -> Option<Vec<(PathBuf, PathBuf)>> {
    let ssh_dir = home_dir()?.join(".ssh");
    let given = args
        .windows(2)
        .find(|w| w[0] == "-F")
        .map(|w| PathBuf::from(&w[1]));
    Some(match given {
        Some(file) if file.as_os_str() == "none" => Vec::new(),
        Some(file) => {
            let file = match file.strip_prefix("~") {
                Ok(rest) => PathBuf::from(std::env::var_os("HOME")?).join(rest),
                Err(_) => std::env::current_dir().ok()?.join(file),
            };
            vec![(file, ssh_dir)]
        }
        None => vec![
            (ssh_dir.join("config"), ssh_dir),
            (
                PathBuf::from("/etc/ssh/ssh_config"),
                PathBuf::from("/etc/ssh"),
            ),
        ],
    })
}

/// This user's home directory in the password database.
fn home_dir() -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid place for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: valid pointers to the entry, a buffer of its stated length,
    // and the result; getuid cannot fail.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r set pw_dir to a NUL-terminated string in `buf`.
    let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
    Some(PathBuf::from(OsStr::from_bytes(dir.to_bytes())))
}

/// Adds `file` and what it includes to `files`, each with its contents
/// (empty when missing). `None` when the configuration may depend on more
/// than files: `Match` on anything but names, environment variables,
/// `%` tokens or another user's `~` in `Include`, quoted `Include` paths;
/// or a file too large or unreadable, nesting too deep.
fn reach(
    file: &Path,
    base: &Path,
    depth: usize,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Option<()> {
    if depth > MAX_DEPTH || files.len() >= MAX_FILES {
        return None;
    }
    let Ok(meta) = std::fs::metadata(file) else {
        files.push((file.to_owned(), Vec::new()));
        return Some(());
    };
    if meta.len() > MAX_CONFIG {
        return None;
    }
    let text = std::fs::read(file).ok()?;
    files.push((file.to_owned(), text.clone()));
    for line in text.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.contains("${") {
            return None;
        }
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword.to_ascii_lowercase().as_str() {
            "match" => {
                while let Some(criterion) = words.next() {
                    let criterion = criterion.trim_start_matches('!').to_ascii_lowercase();
                    if criterion == "all" {
                        continue;
                    }
                    if !NAME_CRITERIA.contains(&criterion.as_str()) {
                        return None;
                    }
                    words.next();
                }
            }
            "include" => {
                for pattern in words {
                    let unknown = pattern.contains(['%', '"'])
                        || (pattern.starts_with('~') && !pattern.starts_with("~/"));
                    if unknown {
                        return None;
                    }
                    let pattern = expand(Path::new(pattern), base);
                    // The pattern itself counts: a file added to match it
                    // changes what it includes.
                    files.push((pattern.clone(), b"include".to_vec()));
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

    fn record(dir: &Path, args: &[OsString]) -> Option<PathBuf> {
        key(dir, Path::new("ssh"), args).map(|k| k.record)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cs-masters-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        dir
    }

    #[test]
    fn an_edited_configuration_names_another_record() {
        let dir = scratch("edit");
        let config = dir.join("config");
        // (A relative Include of a user's file, as `-F` gives, starts in ~/.ssh.)
        let include = format!("Include {}/conf.d/*.conf\n", dir.display());
        std::fs::write(&config, include + "Host web1\n  Port 22\n").unwrap();
        let first = record(&dir, &args(&config)).unwrap();
        assert_eq!(record(&dir, &args(&config)), Some(first.clone()));
        assert!(first.file_name().unwrap().len() <= 2 + 32);
        // Other arguments, another record.
        let mut other = args(&config);
        other.push("-p2222".into());
        assert_ne!(record(&dir, &other).unwrap(), first);
        // A file added where an Include looks.
        let added_file = dir.join("conf.d/a.conf");
        std::fs::write(&added_file, "Host web1\n  HostName 10.0.0.9\n").unwrap();
        let added = record(&dir, &args(&config)).unwrap();
        assert_ne!(added, first);
        // That file edited within the same second, to the same size.
        std::fs::write(&added_file, "Host web1\n  HostName 10.0.0.8\n").unwrap();
        assert_ne!(record(&dir, &args(&config)).unwrap(), added);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_configuration_that_depends_on_more_than_files_is_never_recorded() {
        let dir = scratch("beyond");
        let config = dir.join("config");
        let include = format!("Include {}/conf.d/*.conf\n", dir.display());
        std::fs::write(&config, include).unwrap();
        for (text, recorded) in [
            ("Match host web1 user deploy\n  Port 2222\n", true),
            ("Match all\n  Port 2222\n", true),
            ("Match !originalhost web* tagged prod\n", true),
            ("# Match exec \"on-vpn\"\n", true),
            ("Match host web1 exec \"on-vpn\"\n", false),
            ("Match !localnetwork 10.0.0.0/8\n", false),
            ("Match canonical host web1\n", false),
            ("Match version OpenSSH_9*\n", false),
            ("Match sessiontype exec\n", false),
            ("Host web1\n  User ${DEPLOY_USER}\n", false),
            ("Include ~/.ssh/%h.conf\n", false),
            ("Include ~deploy/config\n", false),
            ("Include \"/a b/c\"\n", false),
        ] {
            std::fs::write(dir.join("conf.d/b.conf"), text).unwrap();
            assert_eq!(record(&dir, &args(&config)).is_some(), recorded, "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_relative_configuration_file_is_the_working_directorys() {
        let dir = scratch("relative");
        let relative = args(Path::new("no-such-dir-here/config"));
        let here = record(&dir, &relative).unwrap();
        let absolute = std::env::current_dir()
            .unwrap()
            .join("no-such-dir-here/config");
        let key = key(&dir, Path::new("ssh"), &relative).unwrap();
        assert_eq!(key.files, [absolute]);
        assert_eq!(record(&dir, &relative), Some(here));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn includes_that_loop_are_not_followed_forever() {
        let dir = scratch("loop");
        let config = dir.join("config");
        std::fs::write(&config, format!("Include {}\n", config.display())).unwrap();
        assert_eq!(record(&dir, &args(&config)), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_ssh_said_is_recorded_only_when_the_key_stands_for_it() {
        let dir = scratch("remember");
        let config = dir.join("config");
        std::fs::write(&config, "Host web1\n  Port 22\n").unwrap();
        let key = key(&dir, Path::new("ssh"), &args(&config)).unwrap();
        let said = "user root\ncontrolpath /run/cs/abc\nforwardagent no\nforwardx11 no\n\
                    sendenv LANG\nsendenv LC_*\n";
        let read = format!("debug1: Reading configuration data {}\n", config.display());
        // ssh read a file the key does not stand for; forwarding: nothing.
        remember(
            &key,
            said,
            "debug1: Reading configuration data /opt/other/ssh_config\n",
        );
        assert!(recall(&key.record).is_none());
        remember(
            &key,
            &said.replace("forwardagent no", "forwardagent yes"),
            &read,
        );
        assert!(recall(&key.record).is_none());
        remember(&key, said, &read);
        let master = recall(&key.record).unwrap();
        assert_eq!(master.socket, Path::new("/run/cs/abc"));
        assert_eq!(master.send_env, ["LANG", "LC_*"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_relative_configuration_file_ssh_names_as_given_is_the_keys() {
        let dir = scratch("remember-relative");
        let relative = Path::new("no-such-dir-here/config");
        let key = key(&dir, Path::new("ssh"), &args(relative)).unwrap();
        let said = "controlpath /run/cs/def\nforwardagent no\nforwardx11 no\n";
        let read = format!(
            "debug1: Reading configuration data {}\n",
            relative.display()
        );
        remember(&key, said, &read);
        assert_eq!(
            recall(&key.record).unwrap().socket,
            Path::new("/run/cs/def")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wildcards_match_as_ssh_matches_them() {
        for (pattern, text, matches) in [
            ("LC_*", "LC_ALL", true),
            ("LC_*", "LC_", true),
            ("LC_*", "LANG", false),
            ("LANG", "LANG", true),
            ("LANG", "LANGUAGE", false),
            ("*", "", true),
            ("L?NG", "LANG", true),
            ("*_TOKEN*", "MY_TOKEN_2", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYc_", false),
        ] {
            assert_eq!(wildcard(pattern, text), matches, "{pattern} {text}");
        }
    }
}
