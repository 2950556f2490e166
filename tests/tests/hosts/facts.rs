//! Typed facts against real hosts: this machine, Debian 12, Debian 11 (the
//! portable musl agent) and busybox, all over ssh but the first.

use std::net::IpAddr;
use std::time::Duration;

use chopsticks::facts::{self, Fact};
use chopsticks::Tunnel;
use chopsticks_tests::*;

fn connect(host: &str) -> Tunnel {
    if host == "localhost" {
        return Tunnel::local().unwrap();
    }
    let builder = Tunnel::builder(host)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20));
    let builder = match host {
        "cs-deb11" => builder.agent_binary(portable_fixture()),
        _ => builder,
    };
    builder
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {host}: {e}"))
}

/// What every host has, whatever it runs.
fn facts_are_typed_and_consistent(host: &str, address: Option<&str>) -> facts::All {
    // Other modules add accounts while this reads them twice.
    let _one = crate::system_state();
    let t = connect(host);
    t.set_call_timeout(Some(Duration::from_secs(60)));
    let all = t.call(facts::all, ()).unwrap();
    let cpus = all.cpus.as_known().expect("cpus");
    assert!(
        cpus.online >= 1 && cpus.usable >= 1 && cpus.usable <= cpus.online,
        "{cpus:?}"
    );
    let memory = all.memory.as_known().expect("memory");
    assert!(
        memory.total > 0 && memory.available <= memory.total,
        "{memory:?}"
    );
    let disks = all.disks.as_known().expect("disks");
    let root = disks
        .iter()
        .find(|d| d.mount == "/")
        .expect("a disk mounted at /");
    // A container's masked paths (`/proc/keys` ...) and the files its
    // runtime bind-mounts (`/etc/hosts` ...) are no disks.
    for disk in disks {
        let kernel = ["/proc", "/sys"]
            .iter()
            .any(|dir| disk.mount == *dir || disk.mount.starts_with(&format!("{dir}/")));
        let file =
            ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].contains(&disk.mount.as_str());
        assert!(!kernel && !file, "{host}: {disk:?} is no disk: {disks:?}");
    }
    assert!(
        root.total >= root.free && root.free >= root.available,
        "{root:?}"
    );
    let interfaces = all.interfaces.as_known().expect("interfaces");
    let lo = interfaces.iter().find(|i| i.name == "lo").expect("lo");
    assert!(
        lo.up
            && lo
                .addresses
                .contains(&"127.0.0.1".parse::<IpAddr>().unwrap())
    );
    if let Some(address) = address {
        let address: IpAddr = address.parse().unwrap();
        let iface = interfaces
            .iter()
            .find(|i| i.addresses.contains(&address))
            .unwrap_or_else(|| panic!("no interface has {address}: {interfaces:?}"));
        assert!(iface.up && iface.mac.is_some(), "{iface:?}");
        assert_eq!(all.ip, Fact::Known(address));
    }
    let users = all.users.as_known().expect("users");
    assert!(
        users.iter().any(|u| u.name == "root" && u.uid == 0),
        "{users:?}"
    );
    // The one-fact functions say the same as `all`.
    assert_eq!(t.call(facts::os, ()).unwrap(), all.os);
    assert_eq!(&t.call(facts::users, ()).unwrap(), users);
    // No container here runs systemd: a typed "not available", not an error.
    match t.call(facts::service, ("ssh".into(),)).unwrap() {
        Fact::NotAvailable(why) => assert!(why.contains("systemd does not run"), "{why}"),
        Fact::Known(service) if host == "localhost" => assert_eq!(service.name, "ssh"),
        other => panic!("{host}: {other:?}"),
    }
    all
}

/// `version` is the point release of Debian on `host` (`12.8`, not `12`):
/// what its `/etc/debian_version` says.
fn assert_point_release(host: &str, version: &str, major: &str) {
    let file = connect(host)
        .call(read_file, ("/etc/debian_version".into(),))
        .unwrap();
    assert_eq!(version, file.trim(), "{host}");
    assert!(
        version.starts_with(major) && version.len() > major.len(),
        "{host}: {version}"
    );
}

#[test]
fn facts_of_this_machine() {
    facts_are_typed_and_consistent("localhost", None);
}

#[test]
fn facts_of_debian_12() {
    let all =
        facts_are_typed_and_consistent("cs-deb12", Some(&test_env("CHOPSTICKS_TEST_DEB12_IP")));
    let os = all.os.known().expect("os-release");
    assert_eq!((os.id.as_str(), os.family.as_str()), ("debian", "debian"));
    assert_point_release("cs-deb12", &os.version, "12.");
    let packages = all.packages.known().expect("dpkg");
    assert_eq!(packages.manager, "dpkg");
    assert!(
        packages
            .installed
            .iter()
            .any(|p| p.name == "openssh-server"),
        "{packages:?}"
    );
    assert!(
        packages
            .installed
            .windows(2)
            .all(|w| w[0].name <= w[1].name),
        "sorted by name"
    );
}

#[test]
fn facts_of_debian_11_with_the_musl_agent() {
    let all =
        facts_are_typed_and_consistent("cs-deb11", Some(&test_env("CHOPSTICKS_TEST_DEB11_IP")));
    let os = all.os.known().expect("os-release");
    assert_eq!(os.id, "debian");
    assert_point_release("cs-deb11", &os.version, "11.");
}

#[test]
fn facts_of_busybox() {
    let all =
        facts_are_typed_and_consistent("cs-busybox", Some(&test_env("CHOPSTICKS_TEST_BUSYBOX_IP")));
    assert!(matches!(all.os, Fact::Known(_) | Fact::NotAvailable(_)));
}
