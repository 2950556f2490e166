//! Built-in facts: ordinary `#[remote]` functions about the host they run on.
//!
//! ```
//! use chopsticks::{facts, Tunnel};
//!
//! #[chopsticks::main]
//! fn main() -> chopsticks::Result<()> {
//!     let t = Tunnel::local()?;
//!     let name = t.call(facts::hostname, ())?;
//!     let kernel = t.call(facts::kernel, ())?;
//!     println!("{name} runs Linux {kernel}");
//!     Ok(())
//! }
//! ```

mod mounts;
mod software;
mod system;

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::remote;

pub use mounts::{disks, Disk};
pub(crate) use software::systemd_runs;
pub use software::{packages, service, InstalledPackage, Packages, ServiceState};
pub use system::{cpus, interfaces, memory, os, users, Account, Cpus, Interface, Memory, Os};

/// A fact that does not apply on every host (no systemd, no package
/// database): its value, or why the host has none. Not an error: the host
/// is fine, it just lacks the thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact<T> {
    /// The value.
    Known(T),
    /// Why there is none on this host.
    NotAvailable(String),
}

impl<T> Fact<T> {
    /// The value, if known.
    pub fn known(self) -> Option<T> {
        match self {
            Fact::Known(v) => Some(v),
            Fact::NotAvailable(_) => None,
        }
    }

    /// The value, if known, borrowed.
    pub fn as_known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            Fact::NotAvailable(_) => None,
        }
    }

    /// A fact that may be missing, from a lookup that may fail.
    fn flat(result: io::Result<Fact<T>>) -> Fact<T> {
        result.unwrap_or_else(|e| Fact::NotAvailable(e.to_string()))
    }

    /// A fact from a lookup that failed on this host.
    fn from_result(result: io::Result<T>) -> Fact<T> {
        result.map_or_else(|e| Fact::NotAvailable(e.to_string()), Fact::Known)
    }
}

/// Every fact of this module at once, in one round trip; a fact that
/// fails on the host is [`Fact::NotAvailable`] with why, the others are
/// there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct All {
    /// [`hostname`]
    pub hostname: Fact<String>,
    /// [`kernel`]
    pub kernel: Fact<String>,
    /// [`arch`]
    pub arch: Fact<String>,
    /// [`uptime`]
    pub uptime: Fact<Duration>,
    /// [`ip`]
    pub ip: Fact<IpAddr>,
    /// [`os`]
    pub os: Fact<Os>,
    /// [`cpus`]
    pub cpus: Fact<Cpus>,
    /// [`memory`]
    pub memory: Fact<Memory>,
    /// [`disks`]
    pub disks: Fact<Vec<Disk>>,
    /// [`interfaces`]
    pub interfaces: Fact<Vec<Interface>>,
    /// [`users`]
    pub users: Fact<Vec<Account>>,
    /// [`packages`]
    pub packages: Fact<Packages>,
}

/// Gathers every fact in one call.
#[remote]
pub fn all() -> All {
    All {
        hostname: Fact::from_result(hostname()),
        kernel: Fact::from_result(kernel()),
        arch: Fact::from_result(arch()),
        uptime: Fact::from_result(uptime()),
        ip: Fact::from_result(ip()),
        os: Fact::flat(os()),
        cpus: Fact::from_result(cpus()),
        memory: Fact::from_result(memory()),
        disks: Fact::from_result(disks()),
        interfaces: Fact::from_result(interfaces()),
        users: Fact::from_result(users()),
        packages: Fact::flat(packages()),
    }
}

/// The host's name (`uname -n`).
#[remote]
pub fn hostname() -> io::Result<String> {
    Ok(uname()?.nodename)
}

/// The kernel release (`uname -r`), e.g. `6.1.0-18-amd64`.
#[remote]
pub fn kernel() -> io::Result<String> {
    Ok(uname()?.release)
}

/// The machine architecture (`uname -m`), e.g. `x86_64`.
#[remote]
pub fn arch() -> io::Result<String> {
    Ok(uname()?.machine)
}

/// How long the host has been up (`/proc/uptime`).
#[remote]
pub fn uptime() -> io::Result<Duration> {
    let text = std::fs::read_to_string("/proc/uptime")?;
    parse_uptime(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/uptime contents: {text:?}"),
        )
    })
}

/// The host's primary address: the IPv4 address of the interface its default
/// route uses; without a default route, its first non-loopback IPv4 address,
/// then its first global IPv6 address.
#[remote]
pub fn ip() -> io::Result<IpAddr> {
    let addresses = interface_addresses()?;
    let default_iface = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|table| default_route_interface(&table));
    let pick = default_iface
        .and_then(|iface| {
            addresses
                .iter()
                .find(|(name, addr)| *name == iface && addr.is_ipv4())
        })
        .or_else(|| {
            addresses
                .iter()
                .find(|(_, addr)| matches!(addr, IpAddr::V4(v4) if !v4.is_loopback()))
        })
        .or_else(|| {
            addresses
                .iter()
                .find(|(_, addr)| matches!(addr, IpAddr::V6(v6) if is_global_v6(v6)))
        });
    pick.map(|(_, addr)| *addr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "the host has no non-loopback IP address",
        )
    })
}

struct Uname {
    nodename: String,
    release: String,
    machine: String,
}

fn uname() -> io::Result<Uname> {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut raw: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `raw` is a valid, writable utsname.
    if unsafe { libc::uname(&mut raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let field = |chars: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { CStr::from_ptr(chars.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(Uname {
        nodename: field(&raw.nodename),
        release: field(&raw.release),
        machine: field(&raw.machine),
    })
}

fn parse_uptime(text: &str) -> Option<Duration> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// The interface of the IPv4 default route in `/proc/net/route` format.
fn default_route_interface(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let iface = fields.next()?;
        let destination = fields.next()?;
        let _gateway = fields.next()?;
        let flags = u32::from_str_radix(fields.next()?, 16).ok()?;
        const RTF_UP: u32 = 1;
        (destination == "00000000" && flags & RTF_UP != 0).then(|| iface.to_owned())
    })
}

fn is_global_v6(v6: &Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    !v6.is_loopback() && !v6.is_unspecified() && (first & 0xffc0) != 0xfe80
}

/// Every (interface, address) pair of the host, from `getifaddrs`.
fn interface_addresses() -> io::Result<Vec<(String, IpAddr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr points to a sockaddr whose family says its layout.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        };
        if let Some(addr) = addr {
            out.push((name, addr));
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_is_found() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn uptime_parses() {
        assert_eq!(
            parse_uptime("350735.47 234388.90\n"),
            Some(Duration::from_millis(350_735_470))
        );
        assert_eq!(parse_uptime("garbage"), None);
    }

    #[test]
    fn facts_run_locally() {
        assert!(!hostname().unwrap().is_empty());
        assert!(kernel().unwrap().chars().next().unwrap().is_ascii_digit());
        assert!(!ip().unwrap().is_loopback());
    }
}
