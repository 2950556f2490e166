//! Facts about the machine: OS, CPUs, memory, disks, interfaces, users,
//! read from `/etc`, `/proc`, `/sys` and system calls.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{interface_addresses, Fact};
use crate::remote;

/// The operating system, from `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// The version with its point release where the host tells it, e.g.
    /// `12.8` (`VERSION_ID`, made precise by `/etc/debian_version` or by
    /// `VERSION`'s `24.04.1`); empty when the file has none.
    pub version: String,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub pretty_name: String,
    /// The family: the last word of `ID_LIKE`, else `ID` (`debian` for
    /// Debian and Ubuntu, `fedora` for Fedora, RHEL and Rocky, `alpine`,
    /// `arch`, `opensuse` ...).
    pub family: String,
}

/// The values of an os-release file.
fn os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// `VERSION_ID` with the point release: the first word of `VERSION` or
/// `debian_version` (`/etc/debian_version`) when it is `VERSION_ID`
/// followed by `.` and more digits (`12` and `12.8` give `12.8`; `12` and
/// `trixie/sid` give `12`).
fn point_release(values: &BTreeMap<String, String>, debian_version: Option<&str>) -> String {
    let id = values.get("VERSION_ID").cloned().unwrap_or_default();
    let finer = |text: &str| {
        let word = text.split_whitespace().next()?;
        let rest = word.strip_prefix(id.as_str())?.strip_prefix('.')?;
        let numeric = !rest.is_empty() && rest.split('.').all(|p| p.parse::<u32>().is_ok());
        numeric.then(|| word.to_owned())
    };
    if id.is_empty() {
        return id;
    }
    let version = values.get("VERSION").map(String::as_str);
    version
        .and_then(finer)
        .or_else(|| debian_version.and_then(finer))
        .unwrap_or(id)
}

fn os_of(text: &str, debian_version: Option<&str>) -> Os {
    let values = os_release(text);
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let id = get("ID");
    let family = values
        .get("ID_LIKE")
        .and_then(|like| like.split_whitespace().last().map(str::to_owned))
        .unwrap_or_else(|| id.clone());
    Os {
        family,
        version: point_release(&values, debian_version),
        pretty_name: get("PRETTY_NAME"),
        id,
    }
}

/// The operating system; not available without an os-release file. Its
/// version carries the point release where the host tells it (`12.8` on
/// Debian, from `/etc/debian_version`; `24.04.1` on Ubuntu).
///
/// # Errors
/// When the file cannot be read for another reason than its absence.
#[remote]
pub fn os() -> io::Result<Fact<Os>> {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                // A few bytes (a FIFO there must not block the fact).
                let debian = small_file("/etc/debian_version");
                return Ok(Fact::Known(os_of(&text, debian.as_deref())));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Fact::NotAvailable(
        "no /etc/os-release or /usr/lib/os-release".into(),
    ))
}

/// The CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpus {
    /// Logical CPUs online.
    pub online: usize,
    /// Logical CPUs this process may run on (its affinity, a container's
    /// cpuset).
    pub usable: usize,
    /// The first CPU's model name, when `/proc/cpuinfo` gives one.
    pub model: Option<String>,
}

/// The CPUs, from `sysconf`, `sched_getaffinity` and `/proc/cpuinfo`.
///
/// # Errors
/// Never in practice; the signature leaves room for hosts that refuse.
#[remote]
pub fn cpus() -> io::Result<Cpus> {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let usable = std::thread::available_parallelism().map_or(online, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    });
    Ok(Cpus {
        online,
        usable,
        model,
    })
}

/// Memory, in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`: what can be had without swapping.
    pub available: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

fn memory_of(text: &str) -> Memory {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Memory {
        total: kib("MemTotal"),
        available: kib("MemAvailable"),
        swap_total: kib("SwapTotal"),
        swap_free: kib("SwapFree"),
    }
}

/// Memory and swap.
///
/// # Errors
/// When `/proc/meminfo` cannot be read.
#[remote]
pub fn memory() -> io::Result<Memory> {
    Ok(memory_of(&std::fs::read_to_string("/proc/meminfo")?))
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name, e.g. `eth0`.
    pub name: String,
    /// Its addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// Its hardware address, when it has one (not loopback).
    pub mac: Option<String>,
    /// Whether it is administratively up (`IFF_UP`).
    pub up: bool,
}

/// The network interfaces, from `/sys/class/net` and `getifaddrs`.
///
/// # Errors
/// When `getifaddrs` fails.
#[remote]
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let addresses = interface_addresses()?;
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for (name, _) in &addresses {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let sys = |file: &str| {
                std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
                    .ok()
                    .map(|s| s.trim().to_owned())
            };
            let mut addrs: Vec<IpAddr> = addresses
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, a)| *a)
                .collect();
            addrs.sort_by_key(|a| a.is_ipv6());
            let flags = sys("flags")
                .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            Interface {
                mac: sys("address").filter(|m| !m.is_empty() && m != "00:00:00:00:00:00"),
                up: flags & libc::IFF_UP as u32 != 0,
                addresses: addrs,
                name,
            }
        })
        .collect())
}

/// A local account, from `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its user ID.
    pub uid: u32,
    /// Its primary group ID.
    pub gid: u32,
    /// Its home directory.
    pub home: String,
    /// Its login shell.
    pub shell: String,
}

fn users_of(passwd: &str) -> Vec<Account> {
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Account {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_owned(),
                shell: f[6].to_owned(),
            })
        })
        .collect()
}

/// The local accounts (`/etc/passwd`; not those of LDAP or other NSS
/// sources).
///
/// # Errors
/// When `/etc/passwd` cannot be read.
#[remote]
pub fn users() -> io::Result<Vec<Account>> {
    Ok(users_of(&std::fs::read_to_string("/etc/passwd")?))
}

/// A small text file's first 4 KiB, opened without blocking (a FIFO or
/// device there gives nothing); `None` when it cannot be read.
fn small_file(path: &str) -> Option<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_and_family() {
        let debian = os_of(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nID=debian\n",
            None,
        );
        assert_eq!(
            (
                debian.id.as_str(),
                debian.version.as_str(),
                debian.family.as_str()
            ),
            ("debian", "12", "debian")
        );
        assert_eq!(debian.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let ubuntu = os_of("ID=ubuntu\nID_LIKE=debian\nVERSION_ID='24.04'\n", None);
        assert_eq!(
            (ubuntu.family.as_str(), ubuntu.version.as_str()),
            ("debian", "24.04")
        );
        assert_eq!(
            os_of("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n", None).family,
            "fedora"
        );
    }

    #[test]
    fn the_version_carries_the_point_release() {
        let debian = "ID=debian\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\n";
        let version = |release, debian_version| os_of(release, debian_version).version;
        assert_eq!(version(debian, Some("12.8\n")), "12.8");
        assert_eq!(version(debian, None), "12");
        assert_eq!(version(debian, Some("trixie/sid\n")), "12");
        assert_eq!(
            version(debian, Some("11.9\n")),
            "12",
            "another release's file"
        );
        assert_eq!(version(debian, Some("12.x\n")), "12");
        let ubuntu = "ID=ubuntu\nVERSION_ID=\"24.04\"\nVERSION=\"24.04.1 LTS (Noble Numbat)\"\n";
        assert_eq!(version(ubuntu, Some("trixie/sid\n")), "24.04.1");
        assert_eq!(version("ID=rocky\nVERSION_ID=\"9.4\"\n", None), "9.4");
        assert_eq!(version("ID=arch\n", Some("12.8")), "");
    }

    #[test]
    fn meminfo_and_passwd_parse() {
        let m = memory_of("MemTotal:       16318732 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
        assert_eq!(
            (m.total, m.available, m.swap_total),
            (16_318_732 * 1024, 8_000_000 * 1024, 0)
        );
        let accounts = users_of("root:x:0:0:root:/root:/bin/bash\n# comment\nbad\ndeploy:x:1001:1001::/home/deploy:/bin/sh\n");
        assert_eq!(accounts.len(), 2);
        assert_eq!(
            (accounts[1].name.as_str(), accounts[1].uid),
            ("deploy", 1001)
        );
    }
}
