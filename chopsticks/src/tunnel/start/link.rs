//! Whether a host is near: on this machine or on a network this machine is
//! attached to, where the agent goes faster as it is than a compressor
//! can make it smaller (a debug agent is tens of MB, which `gzip -1` takes
//! over a second to compress and a local link moves in a tenth). Elsewhere
//! it is compressed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Asked when a host wants the agent: whether its link is near.
pub(crate) type Near = Arc<dyn Fn() -> bool + Send + Sync>;

/// A link never taken for near (a command's, whose other end is unknown).
pub(crate) fn far() -> Near {
    Arc::new(|| false)
}

/// Whether `address` (what ssh connects to: an address or a name) is this
/// machine or on one of the IPv4 networks its interfaces are attached to.
/// A name other than `localhost` is not looked up (a slow resolver would
/// cost more than compressing): it counts as far.
pub(crate) fn near(address: &str) -> bool {
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match address.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(IpAddr::V4(ip)) => attached(ip, &networks()),
        _ => false,
    }
}

/// Whether `ip` is in one of `networks` (address, netmask).
fn attached(ip: Ipv4Addr, networks: &[(Ipv4Addr, Ipv4Addr)]) -> bool {
    let ip = u32::from(ip);
    networks.iter().any(|(net, mask)| {
        let (net, mask) = (u32::from(*net), u32::from(*mask));
        mask != 0 && ip & mask == net & mask
    })
}

/// The IPv4 networks of this machine's interfaces, from `getifaddrs`.
fn networks() -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // Only interfaces that are up, and not tunnels (a VPN's peers
        // may be anywhere: a point-to-point or ARP-less link is far).
        let flags = ifa.ifa_flags;
        let up = flags & libc::IFF_UP as u32 != 0;
        let tunnel = flags & (libc::IFF_POINTOPOINT | libc::IFF_NOARP) as u32 != 0;
        if !up || tunnel {
            continue;
        }
        // SAFETY: both point to sockaddrs whose family says their layout;
        // an AF_INET one is a sockaddr_in.
        let v4 = |sa: *const libc::sockaddr| unsafe {
            (i32::from((*sa).sa_family) == libc::AF_INET).then(|| {
                let sin = &*(sa as *const libc::sockaddr_in);
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
            })
        };
        if let (Some(addr), Some(mask)) = (v4(ifa.ifa_addr), v4(ifa.ifa_netmask)) {
            out.push((addr, mask));
        }
    }
    // SAFETY: the head getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_and_its_networks_are_near() {
        assert!(near("127.0.0.1") && near("::1") && near("[::1]") && near("localhost"));
        assert!(!near("192.0.2.77.example") && !near("web1"));
        let nets = [(
            Ipv4Addr::new(172, 29, 157, 1),
            Ipv4Addr::new(255, 255, 255, 0),
        )];
        assert!(attached(Ipv4Addr::new(172, 29, 157, 11), &nets));
        assert!(!attached(Ipv4Addr::new(172, 29, 158, 11), &nets));
        assert!(!attached(Ipv4Addr::new(8, 8, 8, 8), &networks()));
    }
}
