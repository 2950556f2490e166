//! Downloads and archives against real hosts (a local tunnel; ssh to
//! Debian 12 and to busybox), from an HTTP server this test starts: on
//! loopback for the controller's fetches, on the test network's gateway
//! (the only address the containers reach this machine by) for the hosts'.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chopsticks::ops::{self, Mode};
use chopsticks::{Error, Group};
use chopsticks_tests::*;

use crate::steps::{check_then_apply, connect, listing, read, scratch};
use sha2::{Digest as _, Sha256};

/// A tiny HTTP/1.0 server: the files it serves, and how often each path
/// was asked for.
#[derive(Clone)]
struct Server {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn start(ip: IpAddr) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| {
            panic!("cannot listen on {ip}: {e}; start the test hosts with tests/setup.sh")
        });
        let server = Server {
            base: format!("http://{}", listener.local_addr().unwrap()),
            files: Arc::default(),
            hits: Arc::default(),
        };
        let serving = server.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let serving = serving.clone();
                std::thread::spawn(move || serving.answer(conn));
            }
        });
        server
    }

    fn answer(&self, conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(&conn);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => break,
                Ok(_) if header.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        let body = self.files.lock().unwrap().get(&path).cloned();
        let mut conn = &conn;
        let _ = match body {
            Some(body) => conn
                .write_all(
                    format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                )
                .and_then(|_| conn.write_all(&body)),
            None => conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        };
    }

    /// Serves `body` at `path`; its URL.
    fn serve(&self, path: &str, body: &[u8]) -> String {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_owned(), body.to_vec());
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn loopback() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| Server::start(IpAddr::from([127, 0, 0, 1])))
}

/// A server on the test network's gateway, which the containers reach.
fn gateway() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let network = test_env("CHOPSTICKS_TEST_NETWORK");
        let out = std::process::Command::new("docker")
            .args(["network", "inspect", &network, "--format"])
            .arg("{{(index .IPAM.Config 0).Gateway}}")
            .output()
            .expect("docker runs");
        let ip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let ip: IpAddr = ip.parse().unwrap_or_else(|_| {
            panic!("no gateway for the docker network {network} ({ip:?}): run tests/setup.sh")
        });
        Server::start(ip)
    })
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn controller_download(host: &str) {
    let t = connect(host);
    let root = scratch(&t, &format!("dl-{host}"));
    let server = loopback();
    let body = format!("release 1 for {host}\n").into_bytes();
    let path = format!("/{host}/app-1.txt");
    let url = server.serve(&path, &body);
    let dest = root.join("app.txt");
    let spec = ops::Download::new(&url, &dest)
        .sha256(sha(&body))
        .mode(0o640);
    let created = check_then_apply(&t, &root, &|m| t.download(spec.clone(), m));
    assert!(
        created.changed && created.summary.starts_with("create "),
        "{created:?}"
    );
    assert!(created.summary.contains(&url), "{created:?}");
    assert_eq!(read(&t, &dest), String::from_utf8(body.clone()).unwrap());
    // Fetched once for the whole process; the runs that found the
    // checksum on the host fetched and sent nothing.
    assert_eq!(server.hits(&path), 1);
    let unchanged = t.download(spec.clone(), Mode::Apply).unwrap();
    assert!(
        unchanged.summary.contains("has the content"),
        "{unchanged:?}"
    );
    assert_eq!(server.hits(&path), 1);

    // Without a checksum: the controller fetches (once per process) to
    // compare.
    let plain = ops::Download::new(&url, &dest).mode(0o640);
    assert!(!t.download(plain, Mode::Apply).unwrap().changed);

    // A checksum that does not match: an error, the old file kept.
    let next = b"release 2\n".to_vec();
    let path2 = format!("/{host}/app-2.txt");
    let url2 = server.serve(&path2, &next);
    let wrong = ops::Download::new(&url2, &dest).sha256(sha(b"something else"));
    let e = t.download(wrong, Mode::Apply).unwrap_err();
    assert!(matches!(e, Error::Controller { .. }), "{e:?}");
    assert!(
        e.to_string().contains("not the") && e.to_string().contains(&url2),
        "{e}"
    );
    assert_eq!(read(&t, &dest), String::from_utf8(body.clone()).unwrap());

    // A new release replaces it, keeping its mode.
    let update = ops::Download::new(&url2, &dest).sha256(sha(&next));
    let changed = check_then_apply(&t, &root, &|m| t.download(update.clone(), m));
    assert!(changed.summary.contains("content changed"), "{changed:?}");
    assert_eq!(read(&t, &dest), "release 2\n");

    // A new content with a new owner: the summary says both, as the put
    // does both (root's hosts only: others cannot give a file away).
    if host != "localhost" {
        let third = b"release 3\n".to_vec();
        let url3 = server.serve(&format!("/{host}/app-3.txt"), &third);
        let owned = ops::Download::new(&url3, &dest)
            .sha256(sha(&third))
            .owner("nobody");
        let made = check_then_apply(&t, &root, &|m| t.download(owned.clone(), m));
        assert!(
            made.summary.contains("content changed") && made.summary.contains("owner 0 -> "),
            "{made:?}"
        );
        assert_eq!(read(&t, &dest), "release 3\n");
    }

    // HTTP 404: an error that names the URL, nothing written.
    let missing = format!("{}/{host}/missing.txt", server.base);
    let e = t
        .download(
            ops::Download::new(&missing, root.join("missing.txt")),
            Mode::Apply,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains(&missing) && e.to_string().contains("404"),
        "{e}"
    );
    assert!(!listing(&t, &root)
        .iter()
        .any(|e| e.0.ends_with(b"missing.txt")));

    // The host alone cannot fetch: the remote function says what to use.
    let e = t
        .call(
            ops::download,
            (ops::Download::new(&url, root.join("other")), Mode::Check),
        )
        .unwrap_err();
    assert!(e.to_string().contains("Tunnel::download"), "{e}");
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn controller_download_local() {
    controller_download("localhost");
}

#[test]
fn controller_download_deb12() {
    controller_download("cs-deb12");
}

#[test]
fn controller_download_busybox() {
    controller_download("cs-busybox");
}

#[test]
fn a_group_download_fetches_once() {
    let hosts = ["cs-local", "cs-deb12", "cs-busybox"];
    let group = Group::new(hosts)
        .progress(false)
        .configure(|b| {
            b.ssh_config(test_ssh_config())
                .connect_timeout(Duration::from_secs(20))
        })
        .call_timeout(Duration::from_secs(120));
    let dir = PathBuf::from(format!("/tmp/cs-fetched-group-{}", std::process::id()));
    group
        .call(ops::directory, (ops::Directory::new(&dir), Mode::Apply))
        .raise_failures()
        .unwrap();
    let body = vec![42u8; 300_000];
    let url = loopback().serve("/group/blob", &body);
    let spec = ops::Download::new(&url, dir.join("blob")).sha256(sha(&body));
    let changes = group
        .download(spec.clone(), Mode::Apply)
        .raise_failures()
        .unwrap();
    assert!(changes.iter().all(|(_, c)| c.changed), "{changes:?}");
    assert_eq!(loopback().hits("/group/blob"), 1);
    let again = group.download(spec, Mode::Apply).raise_failures().unwrap();
    assert!(again.iter().all(|(_, c)| !c.changed), "{again:?}");
    assert_eq!(loopback().hits("/group/blob"), 1);
    group
        .call(remove_tree, (dir.as_os_str().as_bytes().to_vec(),))
        .raise_failures()
        .unwrap();
}

/// A URL that fails is fetched once for the whole group: the other hosts
/// fail at once with its error, without each trying again.
#[test]
fn a_group_download_that_fails_fails_once() {
    let group = Group::new(["cs-local", "cs-deb12", "cs-busybox"])
        .progress(false)
        .configure(|b| {
            b.ssh_config(test_ssh_config())
                .connect_timeout(Duration::from_secs(20))
        })
        .call_timeout(Duration::from_secs(120));
    let url = format!("{}/group/missing", loopback().base);
    let dest = format!("/tmp/cs-fetched-group-missing-{}", std::process::id());
    let spec = ops::Download::new(&url, dest).sha256(sha(b"x"));
    let results = group.download(spec, Mode::Apply);
    let errors: Vec<String> = results
        .iter()
        .map(|(host, r)| match r {
            Ok(c) => panic!("{host} downloaded a 404: {c:?}"),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e.contains("404")), "{errors:?}");
    assert_eq!(loopback().hits("/group/missing"), 1, "{errors:?}");
}

fn on_host(host: &str, server: &Server) {
    let t = connect(host);
    let root = scratch(&t, &format!("onhost-{host}"));
    let body = format!("fetched by {host}\n").into_bytes();
    let path = format!("/onhost/{host}");
    let url = server.serve(&path, &body);
    let dest = root.join("got.txt");
    let spec = ops::Download::new(&url, &dest).sha256(sha(&body)).on_host();
    let made = check_then_apply(&t, &root, &|m| t.download(spec.clone(), m));
    assert!(made.summary.starts_with("create "), "{made:?}");
    assert_eq!(read(&t, &dest), String::from_utf8(body).unwrap());
    assert_eq!(server.hits(&path), 1);
    // The remote function alone does the same, in a host's own plan.
    let alone = t.call(ops::download, (spec, Mode::Apply)).unwrap();
    assert!(!alone.changed);
    // A wrong checksum keeps the old file, and leaves no temporary one.
    let wrong = ops::Download::new(&url, &dest).sha256(sha(b"no")).on_host();
    let e = t.call(ops::download, (wrong, Mode::Apply)).unwrap_err();
    assert!(e.to_string().contains("not the"), "{e}");
    assert_eq!(listing(&t, &root).len(), 1 + 1, "{:?}", listing(&t, &root));
    // 404.
    let missing = format!("{}/onhost/missing", server.base);
    let e = t
        .call(
            ops::download,
            (
                ops::Download::new(&missing, root.join("m"))
                    .sha256(sha(b""))
                    .on_host(),
                Mode::Apply,
            ),
        )
        .unwrap_err();
    assert!(e.to_string().contains(&missing), "{e}");
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn on_host_busybox_fetches_with_wget() {
    on_host("cs-busybox", gateway());
}

#[test]
fn on_host_local_fetches_with_curl() {
    on_host("localhost", loopback());
}

#[test]
fn on_host_without_curl_or_wget_says_so() {
    let t = connect("cs-deb12");
    let url = gateway().serve("/deb12/x", b"x");
    let spec = ops::Download::new(url, "/tmp/cs-fetched-none")
        .sha256(sha(b"x"))
        .on_host();
    let e = t.download(spec, Mode::Check).unwrap_err();
    assert!(e.to_string().contains("neither curl nor wget"), "{e}");
}

/// A fresh directory on this machine.
fn local_scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cs-fetched-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(program: &str, args: &[&str], cwd: &Path) {
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program} (install it): {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// The same small tree as tar.gz, tar.xz, tar.zst and zip, built with this
/// machine's tools.
fn archives(tag: &str) -> Vec<(&'static str, PathBuf)> {
    let dir = local_scratch(&format!("archives-{tag}"));
    std::fs::create_dir_all(dir.join("src/top/sub")).unwrap();
    std::fs::write(dir.join("src/top/a.txt"), "alpha\n").unwrap();
    std::fs::write(dir.join("src/top/sub/b.txt"), "beta\n").unwrap();
    // Compressible: zip deflates it rather than storing it.
    std::fs::write(dir.join("src/top/sub/big.txt"), "gamma\n".repeat(50_000)).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("src/top/link")).unwrap();
    let src = dir.join("src");
    let out = |name: &str| dir.join(name).display().to_string();
    run("tar", &["czf", &out("t.tar.gz"), "top"], &src);
    run("tar", &["cJf", &out("t.tar.xz"), "top"], &src);
    run("tar", &["--zstd", "-cf", &out("t.tar.zst"), "top"], &src);
    run("zip", &["-qry", &out("t.zip"), "top"], &src);
    ["t.tar.gz", "t.tar.xz", "t.tar.zst", "t.zip"]
        .into_iter()
        .map(|n| (n, dir.join(n)))
        .collect()
}

fn unarchive_on(host: &str) {
    let t = connect(host);
    for (name, archive) in archives(host) {
        let root = scratch(&t, &format!("ua-{host}-{name}"));
        let spec = ops::Unarchive::local(&archive, &root);
        let made = check_then_apply(&t, &root, &|m| t.unarchive(spec.clone(), m));
        assert!(made.summary.contains("to create"), "{name}: {made:?}");
        assert_eq!(read(&t, &root.join("top/a.txt")), "alpha\n", "{name}");
        assert_eq!(read(&t, &root.join("top/sub/b.txt")), "beta\n", "{name}");
        assert_eq!(
            read(&t, &root.join("top/sub/big.txt")),
            "gamma\n".repeat(50_000)
        );
        let entries = listing(&t, &root);
        let link = entries
            .iter()
            .find(|e| e.0 == b"top/link")
            .expect("the link");
        assert_eq!((link.1, link.3.as_str()), ('l', "a.txt"), "{name}");
        // A file changed since is put back.
        t.call(
            ops::file,
            (
                ops::File::new(root.join("top/a.txt")).content("edited\n"),
                Mode::Apply,
            ),
        )
        .unwrap();
        let back = t.unarchive(spec.clone(), Mode::Apply).unwrap();
        assert!(back.summary.contains("1 to replace"), "{name}: {back:?}");
        assert_eq!(read(&t, &root.join("top/a.txt")), "alpha\n", "{name}");
        t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
            .unwrap();
    }
}

#[test]
fn unarchive_local() {
    unarchive_on("localhost");
}

#[test]
fn unarchive_deb12() {
    unarchive_on("cs-deb12");
}

#[test]
fn unarchive_busybox() {
    unarchive_on("cs-busybox");
}

#[test]
fn an_archive_on_the_host_is_unpacked_there() {
    let t = connect("cs-busybox");
    let root = scratch(&t, "ua-onhost");
    let (_, archive) = archives("onhost").remove(1);
    let on_host = root.join("t.tar.xz");
    t.put(&archive, &on_host).run().unwrap();
    t.call(
        ops::directory,
        (ops::Directory::new(root.join("out")), Mode::Apply),
    )
    .unwrap();
    let spec = ops::Unarchive::new(&on_host, root.join("out"));
    let made = t.call(ops::unarchive, (spec.clone(), Mode::Apply)).unwrap();
    assert!(made.changed, "{made:?}");
    assert!(!t.call(ops::unarchive, (spec, Mode::Apply)).unwrap().changed);
    assert_eq!(read(&t, &root.join("out/top/sub/b.txt")), "beta\n");
}

/// A tar built by python's tarfile: entries as `script` adds them.
fn crafted(name: &str, script: &str) -> PathBuf {
    let dir = local_scratch("crafted");
    let path = dir.join(name);
    let program = format!(
        "import tarfile, io\n\
         t = tarfile.open({:?}, 'w:gz')\n\
         def f(name, data=b'x', mode=0o644):\n    i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; t.addfile(i, io.BytesIO(data))\n\
         def l(name, target, kind=tarfile.SYMTYPE):\n    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; t.addfile(i)\n\
         def d(name):\n    i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)\n\
         {script}\nt.close()\n",
        path.display().to_string()
    );
    run("python3", &["-c", &program], &dir);
    path
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let t = connect("localhost");
    let root = scratch(&t, "ua-hostile");
    let outside = root.join("outside");
    t.call(ops::directory, (ops::Directory::new(&outside), Mode::Apply))
        .unwrap();
    let dest = root.join("dest");
    t.call(ops::directory, (ops::Directory::new(&dest), Mode::Apply))
        .unwrap();
    let out = outside.display().to_string();
    let cases = [
        ("up.tar.gz", "f('ok.txt')\nf('../x')".to_owned(), "goes up"),
        (
            "abs.tar.gz",
            format!("f('ok.txt')\nf('{out}/abs')"),
            "absolute",
        ),
        (
            "through.tar.gz",
            format!("f('ok.txt')\nl('l', '{out}')\nf('l/f')"),
            "symbolic link",
        ),
        (
            "hard.tar.gz",
            "f('ok.txt')\nl('h', 'not-there', tarfile.LNKTYPE)".to_owned(),
            "hard link",
        ),
        (
            "hard-abs.tar.gz",
            "f('ok.txt')\nl('h', '/etc/passwd', tarfile.LNKTYPE)".to_owned(),
            "absolute",
        ),
        (
            "fifo.tar.gz",
            "f('ok.txt')\nl('p', '', tarfile.FIFOTYPE)".to_owned(),
            "fifo",
        ),
        // Entries that contradict earlier ones: apply would make the
        // first, then fail.
        (
            "link-then-dir.tar.gz",
            format!("f('ok.txt')\nl('a', '{out}')\nd('a')\nf('a/x')"),
            "a is a directory in the archive after a symbolic link",
        ),
        (
            "file-then-dir.tar.gz",
            "f('ok.txt')\nf('a')\nd('a')\nf('a/x')".to_owned(),
            "a is a directory in the archive after a file",
        ),
        (
            "dir-then-file.tar.gz",
            "f('ok.txt')\nd('a')\nf('a')".to_owned(),
            "a is a file in the archive after a directory",
        ),
        (
            "bomb.tar.gz",
            "f('ok.txt')\nf('big', bytes(3 << 20))".to_owned(),
            "more than the bound",
        ),
    ];
    for (name, script, why) in cases {
        let archive = crafted(name, &script);
        let spec = ops::Unarchive::local(&archive, &dest).max_bytes(1 << 20);
        let e = t.unarchive(spec, Mode::Apply).unwrap_err();
        assert!(e.to_string().contains(why), "{name}: {e}");
        assert!(e.to_string().contains("nothing was written"), "{name}: {e}");
        assert_eq!(listing(&t, &dest).len(), 1, "{name} wrote into dest");
        assert_eq!(listing(&t, &outside).len(), 1, "{name} wrote outside");
    }
    // A symlink in dest is not gone through either.
    t.call(
        ops::symlink,
        (ops::Symlink::new(dest.join("l"), &outside), Mode::Apply),
    )
    .unwrap();
    let archive = crafted("dest-link.tar.gz", "f('l/f')");
    let e = t
        .unarchive(ops::Unarchive::local(&archive, &dest), Mode::Apply)
        .unwrap_err();
    assert!(e.to_string().contains("symbolic link l in dest"), "{e}");
    assert_eq!(listing(&t, &outside).len(), 1);
    // Too many entries.
    let archive = crafted("many.tar.gz", "for i in range(20): f('m%d' % i)");
    let e = t
        .unarchive(
            ops::Unarchive::local(&archive, &dest).max_entries(10),
            Mode::Apply,
        )
        .unwrap_err();
    assert!(e.to_string().contains("more than 10 entries"), "{e}");
    // Setuid and setgid bits are dropped.
    let archive = crafted("suid.tar.gz", "f('suid', b'#!/bin/sh\\n', 0o6755)");
    t.unarchive(ops::Unarchive::local(&archive, &dest), Mode::Apply)
        .unwrap();
    let suid = listing(&t, &dest);
    let suid = suid.iter().find(|e| e.0 == b"suid").unwrap();
    assert_eq!(suid.2, 0o755);
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}

#[test]
fn a_local_archive_is_copied_to_a_private_directory_of_its_own() {
    // The copy's name was /tmp/.chopsticks-unarchive-{controller pid}-{n}:
    // anyone could take it first, and two controllers with the same pid
    // (in containers) shared it.
    let t = connect("localhost");
    let root = scratch(&t, "ua-private");
    let taken: Vec<PathBuf> = (0..64)
        .map(|n| {
            let p = format!("/tmp/.chopsticks-unarchive-{}-{n}", std::process::id());
            PathBuf::from(p)
        })
        .collect();
    for path in &taken {
        std::fs::create_dir_all(path.join("taken")).unwrap();
    }
    let (_, archive) = archives("private").remove(0);
    let check = t.unarchive(ops::Unarchive::local(&archive, &root), Mode::Check);
    let made = t.unarchive(ops::Unarchive::local(&archive, &root), Mode::Apply);
    for path in &taken {
        std::fs::remove_dir_all(path).unwrap();
    }
    assert_eq!(check.unwrap(), made.unwrap());
    assert_eq!(read(&t, &root.join("top/a.txt")), "alpha\n");
    t.call(remove_tree, (root.as_os_str().as_bytes().to_vec(),))
        .unwrap();
}
