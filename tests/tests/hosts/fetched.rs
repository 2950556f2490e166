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

use chopsticks::ops::{self, Change, Mode};
use chopsticks::{Error, Group, Tunnel};
use chopsticks_tests::*;
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

fn connect(host: &str) -> Tunnel {
    let t = match host {
        "localhost" => Tunnel::local().unwrap(),
        alias => test_host(alias)
            .connect()
            .unwrap_or_else(|e| panic!("connecting to {alias}: {e}")),
    };
    t.set_call_timeout(Some(Duration::from_secs(120)));
    t
}

/// A fresh directory on the host.
fn scratch(t: &Tunnel, test: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/cs-fetched-{test}-{}", std::process::id()));
    t.call(remove_tree, (dir.as_os_str().as_bytes().to_vec(),))
        .unwrap();
    t.call(ops::directory, (ops::Directory::new(&dir), Mode::Apply))
        .unwrap();
    dir
}

fn listing(t: &Tunnel, path: &Path) -> Vec<Entry> {
    t.call(tree_listing, (path.as_os_str().as_bytes().to_vec(),))
        .unwrap()
}

fn read(t: &Tunnel, path: &Path) -> String {
    t.call(read_file, (path.display().to_string(),)).unwrap()
}

/// Check, then apply: check changes nothing and says word for word what
/// apply does; a second apply and check change nothing.
fn check_then_apply(
    t: &Tunnel,
    root: &Path,
    step: &dyn Fn(Mode) -> chopsticks::Result<Change>,
) -> Change {
    let before = listing(t, root);
    let check = step(Mode::Check).unwrap();
    assert_eq!(listing(t, root), before, "check mode changed the host");
    let apply = step(Mode::Apply).unwrap();
    assert_eq!(check, apply, "check mode said otherwise than apply did");
    let again = step(Mode::Apply).unwrap();
    assert!(
        !again.changed,
        "a second apply changed something: {again:?}"
    );
    assert_eq!(step(Mode::Check).unwrap(), again);
    apply
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
