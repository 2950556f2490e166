//! File transfers against real hosts: the suite (`transfers/`) over a local
//! tunnel and over ssh to the test containers (Debian 12; Debian 11 with
//! the portable musl agent; busybox), then what needs one host's setup:
//! a full disk, a user without rights, a bind-mounted file, groups and
//! queues.

mod transfers;

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use chopsticks::{Error, FileOptions, Group, Queue, Tunnel, TunnelBuilder};
use chopsticks_tests::*;
use transfers::{noise, remote_scratch, scratch};

chopsticks::agent_test!();

fn builder(alias: &str) -> TunnelBuilder {
    Tunnel::builder(alias)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20))
}

fn connect(alias: &str) -> Tunnel {
    let builder = match alias {
        "cs-deb11" => builder(alias).agent_binary(portable_fixture()),
        _ => builder(alias),
    };
    builder
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {alias}: {e}"))
}

mod local {
    use super::*;
    const TARGET: transfers::Target = transfers::Target {
        host: "localhost",
        connect: || Tunnel::local().expect("start a local agent"),
    };
    transfer_tests!(TARGET);
}

mod deb12 {
    use super::*;
    const TARGET: transfers::Target = transfers::Target {
        host: "cs-deb12",
        connect: || connect("cs-deb12"),
    };
    transfer_tests!(TARGET);
}

mod deb11_musl {
    use super::*;
    const TARGET: transfers::Target = transfers::Target {
        host: "cs-deb11",
        connect: || connect("cs-deb11"),
    };
    transfer_tests!(TARGET);
}

mod busybox {
    use super::*;
    const TARGET: transfers::Target = transfers::Target {
        host: "cs-busybox",
        connect: || connect("cs-busybox"),
    };
    transfer_tests!(TARGET);
}

#[test]
fn a_full_disk_leaves_the_old_file_and_no_temporary() {
    // cs-deb12 has a 1 MiB tmpfs at /mnt/small (tests/hosts/up.sh).
    let t = connect("cs-deb12");
    // What an earlier, failed run may have left.
    t.call(remove_tree, (b"/mnt/small/tree".to_vec(),)).unwrap();
    let dest = PathBuf::from("/mnt/small/f");
    t.put_bytes(b"old", &dest, &FileOptions::new()).unwrap();
    let here = scratch("full");
    let src = here.join("big");
    std::fs::write(&src, noise(4 << 20, 9)).unwrap();
    let err = t.put(&src, &dest).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Transfer { local: false, .. }),
        "{err:?}"
    );
    assert!(text.starts_with("cs-deb12: /mnt/small/f: "), "{text}");
    assert!(text.contains("no space left"), "{text}");
    let entries = t.call(tree_listing, (b"/mnt/small".to_vec(),)).unwrap();
    let names: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.0).into_owned())
        .collect();
    assert_eq!(names, ["", "f"], "no temporary is left");
    assert_eq!(t.call(read_file, ("/mnt/small/f".into(),)).unwrap(), "old");
    // A tree that does not fit: nothing of it replaces anything.
    let tree = here.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"new").unwrap();
    std::fs::write(tree.join("g"), noise(2 << 20, 10)).unwrap();
    let err = t.put(&tree, "/mnt/small/tree").unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    t.put_bytes(b"", "/mnt/small/f", &FileOptions::new())
        .unwrap();
    std::fs::remove_dir_all(here).unwrap();
}

#[test]
fn a_user_without_rights_gets_permission_denied_with_the_path() {
    let t = connect("cs-deb12-deploy");
    let err = t
        .put_bytes(b"x", "/etc/chopsticks-denied", &FileOptions::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cs-deb12-deploy: /etc/chopsticks-denied: "),
        "{text}"
    );
    assert!(
        text.contains("permission denied") && text.contains("sudo"),
        "{text}"
    );
    // Changing the owner needs the right to.
    let err = t
        .put_bytes(
            b"x",
            "/tmp/chopsticks-owned",
            &FileOptions::new().owner("root"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let err = t
        .put_bytes(
            b"x",
            "/tmp/chopsticks-owned",
            &FileOptions::new().owner("nobody-here"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no user `nobody-here`"), "{err}");
}

#[test]
fn owner_and_group_are_set_by_name_or_id() {
    let t = connect("cs-deb12");
    let there = remote_scratch(&t, "owner");
    let opts = FileOptions::new().owner("deploy").group("0");
    t.put_bytes(b"x", there.join("f"), &opts).unwrap();
    let (owner, group) = t
        .call(owner_of, (there.join("f").to_string_lossy().into_owned(),))
        .unwrap();
    assert_eq!((owner.as_str(), group), ("deploy", 0));
    t.call(remove_tree, (there.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn a_bind_mounted_file_is_written_in_place_and_says_so() {
    // Docker bind-mounts /etc/hosts into a container: rename over it fails
    // with EBUSY.
    let t = connect("cs-deb12");
    let old = t.call(read_file, ("/etc/hosts".into(),)).unwrap();
    let new = format!("{old}# chopsticks test\n");
    let put = t
        .put_bytes(new.as_bytes(), "/etc/hosts", &FileOptions::new())
        .unwrap();
    assert!(put.in_place && put.changed, "{put:?}");
    assert_eq!(t.call(read_file, ("/etc/hosts".into(),)).unwrap(), new);
    let back = t
        .put_bytes(old.as_bytes(), "/etc/hosts", &FileOptions::new())
        .unwrap();
    assert!(back.in_place);
    assert_eq!(t.call(read_file, ("/etc/hosts".into(),)).unwrap(), old);
}

fn group<const N: usize>(hosts: [&str; N]) -> Group {
    let config = test_ssh_config();
    Group::new(hosts).configure(move |b| {
        let b = b
            .ssh_config(&config)
            .connect_timeout(Duration::from_secs(20));
        if b.host() == "cs-deb11" {
            b.agent_binary(portable_fixture())
        } else {
            b
        }
    })
}

#[test]
fn a_group_puts_to_every_host_and_fetches_to_host_paths() {
    let g = group(["cs-deb12", "cs-deb11", "cs-busybox", "cs-local"]);
    let here = scratch("group");
    let src = here.join("conf");
    std::fs::write(&src, noise(100_000, 11)).unwrap();
    let dest = format!("/tmp/cs-files-group-dest-{}", std::process::id());
    let put = g.put(&src, &dest);
    assert!(put.is_ok(), "{:?}", put.failures().collect::<Vec<_>>());
    assert_eq!(put.len(), 4);
    for (_, t) in put.successful() {
        assert!(t.changed);
    }
    let pattern = here.join("fetched/{host}.conf");
    let fetched = g.fetch_with(&dest, &pattern, &FileOptions::new().parents(true));
    assert!(
        fetched.is_ok(),
        "{:?}",
        fetched.failures().collect::<Vec<_>>()
    );
    for host in ["cs-deb12", "cs-deb11", "cs-busybox", "cs-local"] {
        let got = std::fs::read(here.join(format!("fetched/{host}.conf"))).unwrap();
        assert!(got == std::fs::read(&src).unwrap(), "{host}");
    }
    // A local path without {host} would put every host's file in one place.
    let refused = g.fetch(&dest, here.join("one.conf"));
    for (host, result) in refused.iter() {
        let err = result.as_ref().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{host}: {err:?}");
        assert!(err.to_string().contains("{host}"), "{err}");
    }
    for (_, t) in g.tunnels().successful() {
        t.call(remove_tree, (dest.clone().into_bytes(),)).unwrap();
    }
    std::fs::remove_dir_all(here).unwrap();
}

#[test]
fn a_queue_runs_puts_calls_and_fetches_in_order() {
    let t = connect("cs-deb12");
    let here = scratch("queue");
    let src = here.join("script");
    std::fs::write(&src, b"hello from the queue").unwrap();
    let dest = format!("/tmp/cs-files-queue-dest-{}", std::process::id());
    let mut queue = Queue::new();
    let put = queue.put(&t, &src, &dest);
    let read = queue.call(&t, read_file, (dest.clone(),));
    let fetch = queue.fetch(&t, &dest, here.join("back"));
    queue.run().unwrap();
    assert!(put.result().unwrap().changed);
    assert_eq!(read.result().unwrap(), "hello from the queue");
    assert_eq!(fetch.result().unwrap().bytes, 20);
    assert_eq!(
        std::fs::read(here.join("back")).unwrap(),
        b"hello from the queue"
    );
    std::fs::remove_dir_all(here).unwrap();
}
