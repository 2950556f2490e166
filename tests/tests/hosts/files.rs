//! File transfers against real hosts: the suite (`files/transfers.rs`)
//! over a local tunnel and over ssh to the test containers (Debian 12;
//! Debian 11 with the portable musl agent; busybox), then what needs one
//! host's setup: a full disk, a user without rights, a bind-mounted file,
//! groups and queues.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use chopsticks::{Error, Group, Queue, Source, Tunnel};
use chopsticks_tests::*;
use transfers::{noise, remote_scratch, scratch};

fn connect(alias: &str) -> Tunnel {
    let builder = match alias {
        "cs-deb11" => test_host(alias).agent_binary(portable_fixture()),
        _ => test_host(alias),
    };
    builder
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {alias}: {e}"))
}

/// The targets of the transfer suite: each test there runs against each
/// of them, as `files::transfers::TEST::TARGET`.
macro_rules! transfer_targets {
    ($test:path) => {
        #[test]
        fn local() {
            $test(&crate::files::LOCAL)
        }

        #[test]
        fn deb12() {
            $test(&crate::files::DEB12)
        }

        #[test]
        fn deb11_musl() {
            $test(&crate::files::DEB11_MUSL)
        }

        #[test]
        fn busybox() {
            $test(&crate::files::BUSYBOX)
        }
    };
}

mod transfers;

const LOCAL: transfers::Target = transfers::Target {
    host: "localhost",
    connect: || Tunnel::local().expect("start a local agent"),
};

const DEB12: transfers::Target = transfers::Target {
    host: "cs-deb12",
    connect: || connect("cs-deb12"),
};

const DEB11_MUSL: transfers::Target = transfers::Target {
    host: "cs-deb11",
    connect: || connect("cs-deb11"),
};

const BUSYBOX: transfers::Target = transfers::Target {
    host: "cs-busybox",
    connect: || connect("cs-busybox"),
};

#[test]
fn a_full_disk_leaves_the_old_file_and_no_temporary() {
    // cs-deb12 has a 1 MiB tmpfs at /mnt/small (tests/hosts/up.sh).
    let t = connect("cs-deb12");
    // What an earlier, failed run may have left.
    t.call(remove_tree, (b"/mnt/small/tree".to_vec(),)).unwrap();
    let dest = PathBuf::from("/mnt/small/f");
    t.put(Source::bytes(b"old"), &dest).run().unwrap();
    let here = scratch("full");
    let src = here.join("big");
    std::fs::write(&src, noise(4 << 20, 9)).unwrap();
    let err = t.put(&src, &dest).run().unwrap_err();
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
    let err = t.put(&tree, "/mnt/small/tree").run().unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    t.put(Source::bytes(b""), "/mnt/small/f").run().unwrap();
    std::fs::remove_dir_all(here).unwrap();
}

#[test]
fn a_user_without_rights_gets_permission_denied_with_the_path() {
    let t = connect("cs-deb12-deploy");
    let err = t
        .put(Source::bytes(b"x"), "/etc/chopsticks-denied")
        .run()
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
        .put(Source::bytes(b"x"), "/tmp/chopsticks-owned")
        .owner("root")
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let err = t
        .put(Source::bytes(b"x"), "/tmp/chopsticks-owned")
        .owner("nobody-here")
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("no user `nobody-here`"), "{err}");
}

#[test]
fn owner_and_group_are_set_by_name_or_id() {
    let t = connect("cs-deb12");
    let there = remote_scratch(&t, "owner");
    t.put(Source::bytes(b"x"), there.join("f"))
        .owner("deploy")
        .group("0")
        .run()
        .unwrap();
    let (owner, group) = t
        .call(owner_of, (there.join("f").to_string_lossy().into_owned(),))
        .unwrap();
    assert_eq!((owner.as_str(), group), ("deploy", 0));
    t.call(remove_tree, (there.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn a_bind_mounted_file_is_written_in_place_and_says_so() {
    let _one = crate::system_state();
    // Docker bind-mounts /etc/hosts into a container: rename over it fails
    // with EBUSY.
    let t = connect("cs-deb12");
    let old = t.call(read_file, ("/etc/hosts".into(),)).unwrap();
    let new = format!("{old}# chopsticks test\n");
    let put = t
        .put(Source::bytes(new.as_bytes()), "/etc/hosts")
        .run()
        .unwrap();
    assert!(put.in_place && put.changed, "{put:?}");
    assert_eq!(t.call(read_file, ("/etc/hosts".into(),)).unwrap(), new);
    let back = t
        .put(Source::bytes(old.as_bytes()), "/etc/hosts")
        .run()
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
    let put = g.put(&src, &dest).run();
    assert!(put.is_ok(), "{:?}", put.failures().collect::<Vec<_>>());
    assert_eq!(put.len(), 4);
    for (_, t) in put.successful() {
        assert!(t.changed);
    }
    let pattern = here.join("fetched/{host}.conf");
    let fetched = g.fetch(&dest, &pattern).parents(true).run();
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
    let refused = g.fetch(&dest, here.join("one.conf")).run();
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

/// What a new user tried first: bytes to every host, then each host's
/// copy fetched in the background into a directory of its own that does
/// not exist yet, as Ansible's fetch makes it; the results as JSON.
#[test]
fn a_group_takes_bytes_and_fetches_in_the_background_into_host_directories() {
    let g = group(["cs-deb12", "cs-busybox", "cs-local"]);
    let here = scratch("group-bytes");
    let dest = format!("/tmp/cs-group-bytes-dest-{}", std::process::id());
    let put = g.put(Source::bytes("rendered\n"), &dest).mode(0o600).run();
    assert!(put.is_ok(), "{:?}", put.failures().collect::<Vec<_>>());
    let fetching = g.fetch(&dest, here.join("logs/{host}/copy")).spawn();
    let fetched = fetching.wait();
    assert!(
        fetched.is_ok(),
        "{:?}",
        fetched.failures().collect::<Vec<_>>()
    );
    for host in ["cs-deb12", "cs-busybox", "cs-local"] {
        let copy = here.join(format!("logs/{host}/copy"));
        assert_eq!(std::fs::read(&copy).unwrap(), b"rendered\n", "{host}");
    }
    // The directories down to the host's are made; those below it are asked for.
    let deeper = g.fetch(&dest, here.join("more/{host}/missing/copy")).run();
    for (host, result) in deeper.iter() {
        let err = result.as_ref().unwrap_err().to_string();
        assert!(err.contains("parents(true)"), "{host}: {err}");
    }
    let json = serde_json::to_value(fetched.get("cs-local").unwrap().as_ref().unwrap()).unwrap();
    assert_eq!(json["remote"], dest.as_str());
    assert_eq!(json["bytes"], 9);
    for (_, t) in g.tunnels().successful() {
        t.call(remove_tree, (dest.clone().into_bytes(),)).unwrap();
    }
    std::fs::remove_dir_all(here).unwrap();
}

/// A queue's put and fetch go on every host of a group, in order with the
/// calls queued there, whether or not their handles are asked for.
#[test]
fn a_queue_puts_and_fetches_on_every_host_of_a_group() {
    let g = group(["cs-deb12", "cs-local"]);
    let here = scratch("queue-group");
    let dest = format!("/tmp/cs-queue-group-dest-{}", std::process::id());
    let mut queue = Queue::new();
    queue.put(&g, Source::bytes("queued\n"), &dest).mode(0o640);
    let reads = queue.call(&g, read_file, (dest.clone(),));
    let fetches = queue.fetch(&g, &dest, here.join("{host}/copy")).queued();
    queue.run().unwrap();
    for ((host, read), (_, fetch)) in reads.into_iter().zip(fetches) {
        assert_eq!(read.result().unwrap(), "queued\n", "{host}");
        assert_eq!(fetch.result().unwrap().bytes, 7, "{host}");
        let copy = here.join(format!("{host}/copy"));
        assert_eq!(std::fs::read(copy).unwrap(), b"queued\n");
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
    let put = queue.put(&t, &src, &dest).queued();
    let read = queue.call(&t, read_file, (dest.clone(),));
    let fetch = queue.fetch(&t, &dest, here.join("back")).queued();
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
