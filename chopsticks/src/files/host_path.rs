//! `{host}` in a fetch's local path: each host's own path, and the
//! directory its name makes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The placeholder a fetch replaces with each host's name.
const HOST: &[u8] = b"{host}";

/// `pattern` with every `{host}` replaced by `host` (`/` in it becoming
/// `_`).
pub(crate) fn fill(pattern: &[u8], host: &str) -> Vec<u8> {
    let name = host.replace('/', "_");
    let mut out = Vec::with_capacity(pattern.len() + name.len());
    let mut rest = pattern;
    while let Some(at) = rest.windows(HOST.len()).position(|w| w == HOST) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(name.as_bytes());
        rest = &rest[at + HOST.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn has_host(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .windows(HOST.len())
        .any(|w| w == HOST)
}

/// Each host's local path for a fetch from many hosts: `pattern` with
/// `{host}` replaced, or why the host has none (no `{host}` in it, or two
/// hosts whose names map to one path).
pub(crate) fn for_hosts<'h>(
    hosts: impl IntoIterator<Item = &'h str>,
    pattern: &Path,
) -> Vec<Result<PathBuf>> {
    let paths: Vec<(&str, PathBuf)> = hosts.into_iter().map(|h| (h, filled(pattern, h))).collect();
    paths
        .iter()
        .map(|(host, path)| {
            let refuse = |message: String| Error::Config {
                host: (*host).to_owned(),
                message,
            };
            if !has_host(pattern) {
                return Err(refuse(format!(
                    "a group fetch to {} would put every host's file in one place: put \
                     `{{host}}` in the local path (e.g. `backups/{{host}}/file`)",
                    pattern.display()
                )));
            }
            let others: Vec<&str> = paths
                .iter()
                .filter(|(o, p)| p == path && o != host)
                .map(|(o, _)| *o)
                .collect();
            if !others.is_empty() {
                return Err(refuse(format!(
                    "a group fetch would write {} for this host and for {}: their names \
                     differ only in `/`; name them apart",
                    path.display(),
                    others.join(", ")
                )));
            }
            Ok(path.clone())
        })
        .collect()
}

/// `pattern` with `{host}` replaced by `host`.
pub(crate) fn filled(pattern: &Path, host: &str) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&fill(
        pattern.as_os_str().as_bytes(),
        host,
    )))
}

/// Creates the directories of `local` (a fetch's path for `host`, made
/// from `pattern`) down to the last one whose name `{host}` made, as
/// Ansible's fetch does: `logs/{host}/syslog` makes `logs/web1/` (and
/// `logs/`) when missing. Directories below it are made only with
/// `parents(true)`, as for any fetch.
pub(crate) fn make_host_dirs(pattern: &Path, local: &Path, host: &str) -> Result<()> {
    // The last component is what the fetch writes: only directories above it.
    let dirs = pattern.components().count().saturating_sub(1);
    let named = pattern
        .components()
        .take(dirs)
        .enumerate()
        .filter(|(_, c)| matches!(c, Component::Normal(name) if has_host(Path::new(name))))
        .map(|(i, _)| i)
        .last();
    let Some(last) = named else { return Ok(()) };
    let dir: PathBuf = local.components().take(last + 1).collect();
    std::fs::create_dir_all(&dir).map_err(|e| Error::Transfer {
        host: host.to_owned(),
        path: dir,
        local: true,
        message: format!("cannot create the host's directory: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fill_the_pattern_and_clashes_are_refused() {
        assert_eq!(fill(b"logs/{host}/{host}.log", "a/b"), b"logs/a_b/a_b.log");
        let paths = for_hosts(["web1", "a/b", "a_b"], Path::new("x/{host}"));
        assert_eq!(paths[0].as_ref().unwrap(), Path::new("x/web1"));
        let clash = paths[1].as_ref().unwrap_err().to_string();
        assert!(clash.contains("for this host and for a_b"), "{clash}");
        let none = for_hosts(["web1"], Path::new("x/file"));
        assert!(none[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("`{host}`"));
    }

    #[test]
    fn only_directories_named_by_the_host_are_made() {
        let dir = std::env::temp_dir().join(format!("host-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = dir.join("{host}-logs/syslog");
        let local = filled(&pattern, "web1");
        make_host_dirs(&pattern, &local, "web1").unwrap();
        assert!(dir.join("web1-logs").is_dir());
        make_host_dirs(&pattern, &local, "web1").unwrap(); // there already
        let deeper = dir.join("new/{host}/below/syslog");
        make_host_dirs(&deeper, &filled(&deeper, "web1"), "web1").unwrap();
        assert!(dir.join("new/web1").is_dir() && !dir.join("new/web1/below").exists());
        let file_named = dir.join("{host}.log");
        make_host_dirs(&file_named, &filled(&file_named, "web1"), "web1").unwrap();
        assert!(!dir.join("web1.log").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
