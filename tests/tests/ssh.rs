//! SSH tunnels against real hosts: the loopback sshd and the containers that
//! `tests/hosts/up.sh` starts (the README's test command runs it). A binary
//! of its own, not a module of `hosts/`: its cache tests empty and damage
//! cs-deb12's agent cache, from which the tests there run their agent.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use chopsticks::{Error, Tunnel};
use chopsticks_tests::*;

chopsticks::agent_test!();

/// Where this binary runs the core suite: each test there runs as
/// `suite::TEST::ssh`.
macro_rules! suite_targets {
    ($test:path) => {
        #[test]
        fn ssh() {
            $test(&crate::SSH)
        }

        #[test]
        fn shared() {
            $test(&crate::SHARED)
        }
    };
}

mod suite;

const SSH: suite::Target = suite::Target {
    host: "cs-local",
    connect: || connect("cs-local"),
    // The client reports the remote signal as status 255.
    killed: "status 255",
    elsewhere: None,
};

/// The same over a connection shared through an ssh master: every tunnel
/// after the first opens its session on the master itself, which each
/// connect checks (no `ssh` of this process names the host).
const SHARED: suite::Target = suite::Target {
    host: "cs-many-900",
    connect: shared_connect,
    // The master sends no exit status for a signal: 255, as ssh says.
    killed: "status 255",
    elsewhere: None,
};

fn shared_connect() -> Tunnel {
    static FIRST: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    // Its master's socket in a directory of its own: it outlives the test.
    let masters = std::env::temp_dir().join(format!("cs-suite-{}", std::process::id()));
    let _ = std::fs::create_dir(&masters);
    let builder = || {
        Tunnel::builder("cs-many-900")
            .ssh_config(ssh_config())
            .control_persist(Duration::from_secs(120))
            .ssh_option(format!("ControlPath={}/%C", masters.display()))
    };
    // The first starts ssh, which leaves the master.
    FIRST.get_or_init(|| drop(builder().connect().unwrap()));
    let t = builder()
        .connect()
        .unwrap_or_else(|e| panic!("connecting to cs-many-900 over its master: {e}"));
    let started = ssh_children("cs-many-900");
    assert_eq!(
        started,
        Vec::<String>::new(),
        "a tunnel over the master ran ssh"
    );
    t
}

/// Tests that empty or damage a host's agent cache, or assert whether a
/// connection uploaded, run one at a time.
static CACHE: Mutex<()> = Mutex::new(());

fn cache_lock() -> std::sync::MutexGuard<'static, ()> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

fn ssh_config() -> PathBuf {
    test_ssh_config()
}

fn connect(alias: &str) -> Tunnel {
    test_host(alias)
        .connect()
        .unwrap_or_else(|e| panic!("connecting to {alias}: {e}"))
}

/// Runs a shell command on a test host with plain ssh.
fn remote_sh(alias: &str, script: &str) -> String {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(ssh_config())
        .args([alias, script])
        .output()
        .expect("run ssh");
    assert!(
        out.status.success(),
        "`{script}` on {alias}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const WIPE: &str = "rm -rf ~/.cache/chopsticks-* /dev/shm/chopsticks-$(id -u) \
                    /tmp/chopsticks-$(id -u) /var/tmp/chopsticks-$(id -u)";

#[test]
fn the_first_connection_uploads_and_the_next_uses_the_cache() {
    let _cache = cache_lock();
    remote_sh("cs-deb12", WIPE);
    let first = connect("cs-deb12");
    assert!(first.uploaded(), "a fresh host gets the agent");
    assert_eq!(first.call(add, (2, 3)).unwrap(), 5);
    let second = connect("cs-deb12");
    assert!(
        !second.uploaded(),
        "the second connection execs the cached agent"
    );
    assert_eq!(second.call(add, (4, 5)).unwrap(), 9);
    let (exe, uid) = second.call(whoami, ()).unwrap();
    assert_eq!(uid, 0);
    assert!(exe.starts_with("/root/.cache/chopsticks-0/"), "{exe}");
}

#[test]
fn a_truncated_or_tampered_cached_agent_is_replaced() {
    let _cache = cache_lock();
    let (exe, _) = connect("cs-deb12").call(whoami, ()).unwrap();
    let good = remote_sh("cs-deb12", &format!("sha256sum {exe}"));

    remote_sh("cs-deb12", &format!("truncate -s 4096 {exe}"));
    let t = connect("cs-deb12");
    assert!(t.uploaded(), "a truncated agent is uploaded again");
    assert_eq!(t.call(add, (1, 1)).unwrap(), 2);
    assert_eq!(remote_sh("cs-deb12", &format!("sha256sum {exe}")), good);
    // A running executable cannot be written to ("text file busy").
    drop(t);

    // Same size, one byte changed (near the end: the section headers, which
    // the loader never reads, so the corrupt copy still runs and checks itself).
    remote_sh(
        "cs-deb12",
        &format!(
            "size=$(wc -c <{exe}); printf X | dd of={exe} bs=1 seek=$((size - 64)) \
             conv=notrunc 2>/dev/null"
        ),
    );
    assert_ne!(remote_sh("cs-deb12", &format!("sha256sum {exe}")), good);
    let t = connect("cs-deb12");
    assert!(
        t.uploaded(),
        "a tampered agent is detected and uploaded again"
    );
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
    assert_eq!(remote_sh("cs-deb12", &format!("sha256sum {exe}")), good);
    drop(t);

    // What a crash can leave: the file emptied, its "checked" mark newer
    // (the warm path trusts the mark and skips the size and the hash, but
    // never runs an empty file, which sh would run as an empty script).
    remote_sh(
        "cs-deb12",
        &format!("d=$(dirname {exe}); h=$(basename {exe}); : >{exe}; sleep 1; touch \"$d/.$h.ok\""),
    );
    let t = connect("cs-deb12");
    assert!(t.uploaded(), "an emptied agent is uploaded again");
    assert_eq!(t.call(add, (3, 3)).unwrap(), 6);
    assert_eq!(remote_sh("cs-deb12", &format!("sha256sum {exe}")), good);
}

#[test]
fn concurrent_cold_bootstraps_all_succeed_and_leave_one_file() {
    let _cache = cache_lock();
    remote_sh("cs-deb12-deploy", WIPE);
    let tunnels: Vec<Tunnel> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| connect("cs-deb12-deploy")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, t) in tunnels.iter().enumerate() {
        assert_eq!(t.call(add, (i as i64, 1)).unwrap(), i as i64 + 1);
    }
    let (exe, _) = tunnels[0].call(whoami, ()).unwrap();
    // Agents whose file a later upload replaced run from a deleted inode.
    let hash = exe
        .trim_end_matches(" (deleted)")
        .rsplit('/')
        .next()
        .unwrap();
    let listing = remote_sh("cs-deb12-deploy", "ls -A ~/.cache/chopsticks-$(id -u)");
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort_unstable();
    let checked = format!(".{hash}.ok");
    assert_eq!(
        files,
        [checked.as_str(), hash],
        "one cached agent and the mark of its check, no probe or temporary files"
    );
}

/// One run of `ship` (a tool connecting once to cs-deb12) with `agent`,
/// remembering hashes in `cache`: (uploaded, executables hashed, the
/// handshake's hash, the agent's own hash on the host, its sections).
fn ship(
    agent: &std::path::Path,
    cache: &std::path::Path,
    extra: &[&str],
) -> (bool, u64, String, String, String) {
    let (uploaded, hashed, sha, own, sections, _) = ship_to("cs-deb12", agent, cache, extra);
    (uploaded, hashed, sha, own, sections)
}

/// [`ship`] to `host`, with the form the agent was sent in.
fn ship_to(
    host: &str,
    agent: &std::path::Path,
    cache: &std::path::Path,
    extra: &[&str],
) -> (bool, u64, String, String, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ship"))
        .arg(ssh_config())
        .arg(host)
        .arg(agent)
        .args(extra)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("run ship");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    (
        field("uploaded") == "true",
        field("hashed").parse().unwrap(),
        field("sha256"),
        field("self"),
        field("sections"),
        field("form"),
    )
}

#[test]
fn a_near_host_gets_the_agent_as_it_is_and_a_far_one_compressed() {
    let _cache = cache_lock();
    let dir = scratch_dir("forms");
    let (agent, cache) = (dir.join("agent"), dir.join("cache"));
    std::fs::copy(env!("CARGO_BIN_EXE_fixture"), &agent).unwrap();
    let sha = ship(&agent, &cache, &[]).2;
    let forget = || {
        remote_sh(
            "cs-deb12",
            &format!("rm -f ~/.cache/chopsticks-0/{sha} ~/.cache/chopsticks-0/.{sha}.ok"),
        )
    };
    // cs-deb12 is on a network this machine is attached to (the test
    // network's bridge): sent as it is, and it runs.
    forget();
    let (uploaded, _, _, own, _, form) = ship_to("cs-deb12", &agent, &cache, &[]);
    assert_eq!(
        (uploaded, form.as_str(), own.as_str()),
        (true, "raw", sha.as_str())
    );
    // Through a command, whose other end is unknown: compressed.
    forget();
    let container = test_container("deb12");
    let (uploaded, _, _, own, _, form) = ship_to(&container, &agent, &cache, &["--docker"]);
    assert_eq!(
        (uploaded, form.as_str(), own.as_str()),
        (true, "gz", sha.as_str())
    );
}

#[test]
fn an_unchanged_executable_is_hashed_once_and_shipped_without_debug_info() {
    let _cache = cache_lock();
    let dir = scratch_dir("ship");
    let (agent, cache) = (dir.join("agent"), dir.join("cache"));
    std::fs::copy(env!("CARGO_BIN_EXE_fixture"), &agent).unwrap();
    let (_, hashed, sha, own, sections) = ship(&agent, &cache, &[]);
    assert_eq!(hashed, 1, "the first run hashes the executable");
    assert_eq!(
        own, sha,
        "the handshake reports the hash of what the host runs"
    );
    assert!(!sections.contains(".debug_info"), "{sections}");
    assert!(sections.contains(".text"), "{sections}");
    assert!(
        std::fs::metadata(&agent).unwrap().len() > 4 * remote_size(&sha),
        "a debug build ships much smaller"
    );
    // The next run knows it, and the host has it.
    assert_eq!(
        ship(&agent, &cache, &[]),
        (false, 0, sha.clone(), sha.clone(), sections)
    );
    // Touched: hashed again, the same content, no upload.
    let file = std::fs::File::options().append(true).open(&agent).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let (uploaded, hashed, again, ..) = ship(&agent, &cache, &[]);
    assert_eq!((uploaded, hashed, again), (false, 1, sha.clone()));
    // Shipped whole and changed: uploaded once, with its debug info.
    let mut file = std::fs::File::options().append(true).open(&agent).unwrap();
    std::io::Write::write_all(&mut file, format!("{:?}", Instant::now()).as_bytes()).unwrap();
    drop(file);
    let (uploaded, hashed, whole, own, sections) = ship(&agent, &cache, &["--debug-info"]);
    assert_eq!((uploaded, hashed), (true, 1));
    assert_ne!(whole, sha);
    assert_eq!(own, whole);
    assert!(sections.contains(".debug_info"), "{sections}");
    let (uploaded, hashed, ..) = ship(&agent, &cache, &["--debug-info"]);
    assert_eq!((uploaded, hashed), (false, 0));
}

/// The size of the cached agent `sha256` on cs-deb12.
fn remote_size(sha256: &str) -> u64 {
    let out = remote_sh(
        "cs-deb12",
        &format!("wc -c < ~/.cache/chopsticks-0/{sha256}"),
    );
    out.trim().parse().unwrap()
}

#[test]
fn login_banner_noise_is_skipped() {
    let t = connect("cs-deb12-noisy");
    assert_eq!(t.call(echo_string, ("clean".into(),)).unwrap(), "clean");
    assert_eq!(t.call(noisy, ()).unwrap(), "child exit status: 0");
}

#[test]
fn a_refused_port_is_a_connect_error() {
    let start = Instant::now();
    let err = test_host("cs-refused").connect().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(
        err.to_string().contains("check that sshd runs there"),
        "{err}"
    );
}

/// A name with an empty label fails in the resolver itself, so no DNS
/// query leaves the machine; ssh reports it as any unknown name.
#[test]
fn an_unknown_host_is_a_connect_error() {
    let start = Instant::now();
    let err = test_host("no-such-host..invalid").connect().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.host(), "no-such-host..invalid");
    let message = err.to_string();
    assert!(message.contains("Could not resolve hostname"), "{message}");
    assert!(
        message.contains("the host name does not resolve"),
        "{message}"
    );
}

#[test]
fn a_bad_key_is_a_connect_error() {
    let dir = scratch_dir("badkey");
    let key = dir.join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(made.success());
    // The test host's settings with only this (unauthorised) key.
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host badkey\n  HostName 172.29.155.11\n  User root\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking no\n",
            key.display(),
            ssh_config().with_file_name("known_hosts").display()
        ),
    )
    .unwrap();
    let err = Tunnel::builder("badkey")
        .ssh_config(&config)
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("Permission denied"), "{err}");
    assert!(err.to_string().contains("authorized_keys"), "{err}");
}

/// `builder` sharing its connection (`control_persist`, 30 s) through a
/// master whose socket is in `dir`, a test's own.
fn over_master_in(
    builder: chopsticks::TunnelBuilder,
    dir: &std::path::Path,
) -> chopsticks::TunnelBuilder {
    builder
        .control_persist(Duration::from_secs(30))
        .ssh_option(format!("ControlPath={}/%C", dir.display()))
}

/// A fresh directory for one test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chopsticks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_host_key_mismatch_is_a_connect_error() {
    let dir = scratch_dir("known");
    let known = dir.join("known_hosts");
    // Any other key stands in for a changed host key: here, the client's own.
    let key_path = ssh_config().with_file_name("id_ed25519.pub");
    let key = std::fs::read_to_string(&key_path).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    std::fs::write(&known, format!("172.29.155.11 {}\n", key.join(" "))).unwrap();
    let err = test_host("cs-deb12")
        .ssh_option(format!("UserKnownHostsFile={}", known.display()))
        .ssh_option("StrictHostKeyChecking=yes")
        .connect()
        .unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("Host key verification failed"),
        "{err}"
    );
    assert!(err.to_string().contains("ssh-keygen -R"), "{err}");
}

#[test]
fn an_unreachable_host_fails_within_the_connect_timeout() {
    // An address on the test network where no container runs.
    let start = Instant::now();
    let err = test_host("172.29.155.99")
        .connect_timeout(Duration::from_secs(3))
        .ssh_option(format!(
            "UserKnownHostsFile={}",
            ssh_config().with_file_name("known_hosts").display()
        ))
        .connect()
        .unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[test]
fn option_looking_host_names_are_refused_and_nothing_runs() {
    let marker = std::env::temp_dir().join(format!("chopsticks-pwned-{}", std::process::id()));
    let host = format!("-oProxyCommand=touch {}", marker.display());
    let err = Tunnel::ssh(&host).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("taken for an option"), "{err}");
    let err = test_host("cs-deb12")
        .user("-oProxyCommand=x")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    thread::sleep(Duration::from_millis(200));
    assert!(
        !marker.exists(),
        "an option-looking host name ran a command"
    );
}

#[test]
fn an_old_glibc_host_gets_the_musl_advice() {
    let err = test_host("cs-deb11").connect().unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("GLIBC_2."), "{text}");
    assert!(text.contains("x86_64-unknown-linux-musl"), "{text}");
    assert!(text.contains("agent_binary"), "{text}");
}

#[test]
fn a_portable_agent_runs_on_an_old_glibc_host() {
    let t = test_host("cs-deb11")
        .agent_binary(portable_fixture())
        .connect()
        .unwrap();
    assert_eq!(
        t.call(echo_inventory, (suite::inventory(),)).unwrap(),
        suite::inventory()
    );
    assert_eq!(t.call(chopsticks::facts::hostname, ()).unwrap(), "cs-deb11");
    let view = t.call(agent_view, ()).unwrap();
    assert_eq!(view.env_agent, None);
}

#[test]
fn a_busybox_host_works() {
    let t = connect("cs-busybox");
    assert_eq!(t.call(add, (20, 22)).unwrap(), 42);
    assert_eq!(
        t.call(chopsticks::facts::hostname, ()).unwrap(),
        "cs-busybox"
    );
    assert_eq!(
        t.call(chopsticks::facts::ip, ()).unwrap().to_string(),
        "172.29.155.13"
    );
    assert_eq!(t.call(noisy, ()).unwrap(), "child exit status: 0");
}

#[test]
fn a_noexec_home_falls_back_to_tmp() {
    let t = connect("cs-noexec");
    let (exe, _) = t.call(whoami, ()).unwrap();
    assert!(
        exe.starts_with("/tmp/chopsticks-") || exe.starts_with("/var/tmp/chopsticks-"),
        "{exe}"
    );
}

/// Where everything the user may write is noexec (home, /tmp, /var/tmp,
/// /dev/shm), the agent runs from memory: each session uploads it again,
/// and nothing is left on the host's disks.
#[test]
fn an_all_noexec_host_runs_the_agent_from_memory() {
    for round in 0..2 {
        let t = connect("cs-memonly");
        assert!(
            t.uploaded(),
            "round {round}: nowhere to cache it, so uploaded"
        );
        let (exe, uid) = t.call(whoami, ()).unwrap();
        assert!(exe.starts_with("/memfd:chopsticks"), "{exe}");
        assert_eq!(uid, 1004, "the noexec user");
        assert_eq!(t.call(add, (2, 3)).unwrap(), 5);
    }
    let left = remote_sh(
        "cs-memonly",
        "ls -a ~/.cache/chopsticks-* /dev/shm/chopsticks-* /tmp/chopsticks-* /var/tmp/chopsticks-* 2>/dev/null | grep -v '^\\.*$' | grep -v ':$' | grep -v '^$' || true",
    );
    assert_eq!(left.trim(), "", "files left in the cache directories");
}

#[test]
fn a_read_only_home_falls_back() {
    let t = connect("cs-rohome");
    let (exe, _) = t.call(whoami, ()).unwrap();
    assert!(!exe.starts_with("/home/"), "{exe}");
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
}

#[test]
fn sudo_runs_the_agent_as_another_user() {
    let _cache = cache_lock();
    let t = test_host("cs-deb12-deploy").sudo("root").connect().unwrap();
    let (_, uid) = t.call(whoami, ()).unwrap();
    assert_eq!(uid, 0);
    let t = connect("cs-deb12-deploy");
    assert_ne!(t.call(whoami, ()).unwrap().1, 0);
}

#[test]
fn sudo_that_wants_a_password_says_so() {
    let start = Instant::now();
    let err = test_host("cs-deb12-pw").sudo("root").connect().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("sudo wants a password"), "{text}");
    assert!(text.contains("NOPASSWD"), "{text}");
}

#[test]
fn a_stale_agent_binary_is_named() {
    // Its upload prunes cs-deb12's cache, which the cache tests inspect.
    let _cache = cache_lock();
    let stale = PathBuf::from(env!("CARGO_BIN_EXE_stale"));
    let t = test_host("cs-deb12").agent_binary(stale).connect().unwrap();
    let err = t.call(add, (1, 2)).unwrap_err();
    assert!(matches!(err, Error::UnknownFunction { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cs-deb12: the agent has no function"),
        "{err}"
    );
}

#[test]
fn an_upload_prunes_old_agents_but_keeps_the_newest() {
    let _cache = cache_lock();
    remote_sh("cs-deb12-deploy", WIPE);
    // Five older agents of other builds, oldest first.
    remote_sh(
        "cs-deb12-deploy",
        "d=~/.cache/chopsticks-$(id -u); mkdir -p -m 700 $d; for i in 1 2 3 4 5; do \
         f=$d/$(printf %064d $i); : >$f; chmod 700 $f; touch -d \"$((10 - i)) days ago\" $f; done",
    );
    let t = connect("cs-deb12-deploy");
    assert!(t.uploaded());
    let (exe, _) = t.call(whoami, ()).unwrap();
    let ours = exe.rsplit('/').next().unwrap().to_owned();
    let listing = remote_sh("cs-deb12-deploy", "ls ~/.cache/chopsticks-$(id -u)");
    let mut kept: Vec<&str> = listing.lines().collect();
    kept.sort_unstable();
    let mut expected = vec![
        "0000000000000000000000000000000000000000000000000000000000000004",
        "0000000000000000000000000000000000000000000000000000000000000005",
        ours.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(kept, expected, "the three newest stay");
}

/// Six different agents (six tools, or six versions of one) bootstrapping
/// one host at once, twelve connects at a time, for several rounds: every
/// upload prunes the cache, and none may take an agent another connect is
/// about to start, nor may their probes collide. (On the loopback sshd: a
/// container's sshd drops more than 10 unauthenticated connections at once.)
#[test]
fn distinct_agents_bootstrapping_one_host_at_once_all_start() {
    let _cache = cache_lock();
    let dir = std::env::temp_dir().join(format!("cs-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = std::fs::read(env!("CARGO_BIN_EXE_fixture")).unwrap();
    let agents: Vec<PathBuf> = (0..6u8)
        .map(|i| {
            // A trailing byte makes another file (another hash) that runs the same.
            let path = dir.join(format!("agent-{i}"));
            let mut bytes = fixture.clone();
            bytes.extend_from_slice(&[i, 0xc5]);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            path
        })
        .collect();
    for round in 0..3 {
        let results: Vec<_> = thread::scope(|s| {
            let jobs: Vec<_> = (0..12)
                .map(|i| {
                    let agent = &agents[i % agents.len()];
                    s.spawn(move || {
                        let t = test_host("cs-local").agent_binary(agent).connect()?;
                        t.call(add, (i as i64, round))
                    })
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        });
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(sum) => assert_eq!(sum, i as i64 + round),
                Err(e) => panic!("round {round}, connect {i}: {e}"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Another user who can write the cache directory (its mode was loosened)
/// plants a file of the agent's name and size, with a fresh mark so that
/// no hash check would run: the warm path must not run it, and the cold
/// path makes the directory private again and installs our own agent.
#[test]
fn a_planted_agent_of_another_user_does_not_run() {
    let _cache = cache_lock();
    let t = connect("cs-deb12-deploy");
    let hash = t
        .agent_sha256()
        .expect("an ssh tunnel reports its agent's hash")
        .to_owned();
    t.close();
    let dir = "/home/deploy/.cache/chopsticks-1001";
    let marker = format!("/tmp/cs-planted-{}", std::process::id());
    let plant = format!(
        "set -e; f={dir}/{hash}; n=$(wc -c <$f); rm -f {marker}; chmod 777 {dir}; rm -f $f; \
         printf '#!/bin/sh\\ntouch {marker}\\nexit 0\\n' >$f; \
         head -c $((n - $(wc -c <$f))) /dev/zero | tr '\\0' '#' >>$f; chmod 755 $f; \
         : >{dir}/.{hash}.ok; stat -c '%s %U' $f"
    );
    let planted = remote_sh("cs-deb12", &plant);
    assert!(planted.trim().ends_with(" root"), "{planted}");
    let t = connect("cs-deb12-deploy");
    assert_eq!(t.call(add, (2, 3)).unwrap(), 5);
    let after = remote_sh(
        "cs-deb12",
        &format!("test -e {marker} && echo RAN || echo clean; stat -c '%a %U' {dir} {dir}/{hash}"),
    );
    assert_eq!(
        after.lines().collect::<Vec<_>>(),
        ["clean", "700 deploy", "700 deploy"],
        "the planted file ran, or the cache was not made private and ours again"
    );
}

/// What a host wrote on stderr before its last reply is printed before the
/// tunnel is gone, even when the program exits right after closing it.
#[test]
fn a_hosts_last_stderr_lines_are_not_lost_on_close() {
    let config = ssh_config().display().to_string();
    for args in [
        vec![],
        vec![config.clone(), "cs-deb12".into()],
        // The first run starts the master, the others use it.
        vec![config, "cs-deb12".into(), "shared".into()],
    ] {
        for round in 0..3 {
            let out = Command::new(env!("CARGO_BIN_EXE_last_words"))
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "ok",
                "{stderr}"
            );
            let said = stderr.lines().filter(|l| l.contains("last words ")).count();
            let shouted = stderr.lines().filter(|l| l.ends_with("xxxxxxxxxx")).count();
            assert_eq!(
                (said, shouted),
                (20, 3000),
                "{args:?}, round {round}: lines were lost (the last 3: {:?})",
                stderr.lines().rev().take(3).collect::<Vec<_>>()
            );
        }
    }
}

/// A controller killed with a call in flight leaves no agent behind: the
/// agent sees its input end, locally and through ssh, and exits although
/// its call still runs.
#[test]
fn a_killed_controller_leaves_no_agent_behind() {
    use std::io::BufRead;
    let config = ssh_config().display().to_string();
    for args in [
        vec![],
        vec![config.clone(), "cs-deb12".into()],
        vec![config, "cs-deb12".into(), "shared".into()],
    ] {
        if args.len() == 3 {
            // The controller over a master opens its session there: it has
            // no `ssh` whose end the agent would see.
            drop(shared_host(&ssh_config(), "cs-deb12").connect().unwrap());
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_orphan"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let pid: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{args:?}: {line:?}"));
        let alive = || match args.is_empty() {
            true => std::path::Path::new(&format!("/proc/{pid}")).exists(),
            false => remote_sh(
                "cs-deb12",
                &format!("kill -0 {pid} 2>/dev/null && echo alive || echo gone"),
            )
            .contains("alive"),
        };
        assert!(alive(), "{args:?}: no agent {pid} to begin with");
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !alive(),
            "{args:?}: the agent {pid} outlived its killed controller"
        );
    }
}

/// A background child of a remote function that keeps the agent's stderr
/// open does not hold up closing the tunnel, locally or over ssh.
#[test]
fn a_child_holding_stderr_open_does_not_hold_up_close() {
    for t in [Tunnel::local().unwrap(), connect("cs-deb12")] {
        let child = t.call(leave_child, (20,)).unwrap();
        assert!(child > 0);
        let started = Instant::now();
        t.close();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(8),
            "{}: closing took {took:?} with a child holding stderr",
            t.host()
        );
        assert!(
            t.call(add, (1, 1)).is_err(),
            "a closed tunnel takes no calls"
        );
    }
}

/// The `ssh` processes this process started whose command line mentions
/// `needle`: `pid: command line`.
fn ssh_children(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if parent == Some(me.as_str()) && cmdline.starts_with("ssh ") && cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// The sockets in `dir`.
fn sockets_in(dir: &std::path::Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect()
}

/// Stops the master listening in `dir` for `alias`, and waits until its
/// socket is gone.
fn stop_master(dir: &std::path::Path, alias: &str) {
    let _ = Command::new("ssh")
        .arg("-F")
        .arg(ssh_config())
        .arg("-o")
        .arg(format!("ControlPath={}/%C", dir.display()))
        .args(["-O", "exit", alias])
        .output();
    let asked = Instant::now();
    while !sockets_in(dir).is_empty() && asked.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sockets_in(dir), Vec::<PathBuf>::new(), "the master is gone");
}

/// With `control_persist`, the first tunnel starts `ssh`, which leaves a
/// master; the next ones open their sessions on that master without
/// starting `ssh`, at once and side by side; once the master is gone, a
/// tunnel starts `ssh` again, which starts a new one.
#[test]
fn a_shared_connection_opens_sessions_on_the_master_without_ssh() {
    let dir = scratch_dir("shared-master");
    let builder = || over_master_in(test_host("cs-many-901"), &dir);
    let needle = dir.display().to_string();
    let first = builder().connect().unwrap();
    assert_eq!(ssh_children(&needle).len(), 1, "the first tunnel runs ssh");
    assert_eq!(first.call(add, (1, 2)).unwrap(), 3);
    drop(first);
    let masters = sockets_in(&dir);
    assert_eq!(masters.len(), 1, "ssh left a master: {masters:?}");
    let (second, third) = (builder().connect().unwrap(), builder().connect().unwrap());
    assert_eq!(
        ssh_children(&needle),
        Vec::<String>::new(),
        "tunnels over the master start no ssh"
    );
    assert_ne!(second.agent_pid(), third.agent_pid());
    let sums = (
        second.call_async(add, (2, 2)),
        third.call_async(add, (3, 3)),
    );
    assert_eq!((sums.0.wait().unwrap(), sums.1.wait().unwrap()), (4, 6));
    second.close();
    assert_eq!(
        third.call(add, (4, 4)).unwrap(),
        8,
        "one closing ends only its own session"
    );
    drop(third);
    assert_eq!(sockets_in(&dir), masters, "the same master served them");
    stop_master(&dir, "cs-many-901");
    let fourth = builder().connect().unwrap();
    assert_eq!(ssh_children(&needle).len(), 1, "no master: ssh again");
    assert_eq!(fourth.call(add, (5, 5)).unwrap(), 10);
    drop(fourth);
    assert_eq!(sockets_in(&dir).len(), 1, "and a master again");
    stop_master(&dir, "cs-many-901");
    forget_masters_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A master that takes the connection and never answers, or refuses the
/// session, costs at most the connect timeout: the tunnel then connects
/// with an `ssh` of its own, which does not wait for that master again.
#[test]
fn a_master_that_hangs_or_refuses_is_passed_by() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    let dir = scratch_dir("hung-master");
    let builder =
        || over_master_in(test_host("cs-many-902"), &dir).connect_timeout(Duration::from_secs(3));
    drop(builder().connect().unwrap());
    let socket = sockets_in(&dir).pop().expect("ssh left a master");
    stop_master(&dir, "cs-many-902");
    for hangs in [true, false] {
        let listener = UnixListener::bind(&socket).unwrap();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let fake = thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            if !hangs {
                // Its hello, then MUX_S_FAILURE for request 1.
                let mut said = [0u8; 64];
                let _ = peer.read(&mut said);
                let why = b"Session open refused by peer";
                let mut reply = vec![0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 4];
                let len = 4 + 4 + 4 + why.len() as u32;
                reply.extend(len.to_be_bytes());
                reply.extend(0x8000_0003u32.to_be_bytes());
                reply.extend(1u32.to_be_bytes());
                reply.extend((why.len() as u32).to_be_bytes());
                reply.extend(why);
                peer.write_all(&reply).unwrap();
            }
            // Held open until the test is done with it.
            let _ = finished.recv_timeout(Duration::from_secs(60));
            drop(peer);
        });
        let started = Instant::now();
        let t = builder()
            .connect()
            .unwrap_or_else(|e| panic!("hangs {hangs}: {e}"));
        let took = started.elapsed();
        assert_eq!(t.call(add, (1, 1)).unwrap(), 2);
        // A hang costs the connect timeout (3 s), a refusal nothing.
        let bound = Duration::from_secs(if hangs { 15 } else { 3 });
        assert!(took < bound, "hangs {hangs}: connecting took {took:?}");
        assert_eq!(
            ssh_children(&dir.display().to_string()).len(),
            1,
            "an ssh of its own"
        );
        drop(t);
        std::fs::remove_file(&socket).unwrap();
        done.send(()).unwrap();
        fake.join().unwrap();
    }
    forget_masters_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `control_persist` tunnels keep in their directory
/// (`$XDG_RUNTIME_DIR/chopsticks-ssh` or `~/.ssh/chopsticks-ssh`): sockets,
/// records of where masters listen, notes of login shells.
fn kept() -> Vec<PathBuf> {
    let dir = ssh_control_dir();
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The links there (the notes): name and target.
fn kept_links() -> Vec<(PathBuf, PathBuf)> {
    kept()
        .into_iter()
        .filter_map(|path| Some((path.clone(), std::fs::read_link(path).ok()?)))
        .collect()
}

/// Removes the records (and login shell notes) of masters whose sockets
/// were in `dir`: a test's scratch directory is a key of its own, which
/// would otherwise stay until pruned a day later.
fn forget_masters_in(dir: &std::path::Path) {
    let needle = format!("controlpath {}/", dir.display());
    for record in kept() {
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        if text.contains(&needle) {
            let note = record.to_string_lossy().replacen("/m-", "/s-", 1);
            let _ = std::fs::remove_file(&record);
            let _ = std::fs::remove_file(note);
        }
    }
}

/// Over a kept master, a host whose login shell is POSIX runs the
/// bootstrap script itself, without `exec /bin/sh -c`: the first tunnel
/// runs `sh` and learns the shell (`SHELL` where the agent runs), the next
/// give the script to the login shell. A login shell that then refuses it
/// (changed since) costs one more session under `sh`, and is learned
/// again.
#[test]
fn a_posix_login_shell_runs_the_script_itself() {
    const SHELL: &str = "/opt/cs-shell/sh";
    const LOG: &str = "/tmp/cs-shell.log";
    const PICKY: &str = "/tmp/cs-shell.picky";
    // A login shell that logs the start of each command, and refuses any
    // but `exec /bin/sh -c ...` while PICKY exists. (The test key logs in
    // as any user there.)
    remote_sh(
        "cs-deb12",
        &format!(
            "mkdir -p /opt/cs-shell && cat >{SHELL} <<'EOS'\n\
             #!/bin/sh\n\
             printf '%.16s\\n' \"$2\" >>{LOG}\n\
             if [ -e {PICKY} ]; then case \"$2\" in 'exec /bin/sh -c '*) ;; \
             *) echo 'picky: not a command I know' >&2; exit 2;; esac; fi\n\
             exec /bin/sh -c \"$2\"\n\
             EOS\n\
             chmod 755 {SHELL}; rm -f {LOG} {PICKY}; \
             id cs-shell >/dev/null 2>&1 || useradd -m -s {SHELL} cs-shell"
        ),
    );
    let log = || -> Vec<String> {
        remote_sh("cs-deb12", &format!("cat {LOG}"))
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let dir = scratch_dir("login-shell");
    let builder = || over_master_in(test_host("cs-deb12").user("cs-shell"), &dir);
    let notes = || -> Vec<PathBuf> {
        kept_links()
            .into_iter()
            .filter(|(_, target)| target == std::path::Path::new(SHELL))
            .map(|(note, _)| note)
            .collect()
    };
    let before = notes();
    let first = builder().connect().unwrap();
    assert_eq!(first.call(add, (1, 1)).unwrap(), 2);
    drop(first);
    let noted: Vec<PathBuf> = notes()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(noted.len(), 1, "the login shell is noted once: {noted:?}");
    let second = builder().connect().unwrap();
    assert_eq!(second.call(add, (2, 2)).unwrap(), 4);
    drop(second);
    let said = log();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("exec /bin/sh -c"), "learning: {said:?}");
    assert!(said[1].starts_with("H="), "the script itself: {said:?}");
    remote_sh("cs-deb12", &format!("touch {PICKY}"));
    let third = builder().connect().unwrap();
    assert_eq!(third.call(add, (3, 3)).unwrap(), 6);
    drop(third);
    let said = log();
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(said[2].starts_with("H="), "tried as noted: {said:?}");
    assert!(
        said[3].starts_with("exec /bin/sh -c"),
        "then under sh: {said:?}"
    );
    assert!(notes().contains(&noted[0]), "learned again");
    remote_sh("cs-deb12", &format!("rm -f {LOG} {PICKY}"));
    stop_master(&dir, "cs-shell@cs-deb12");
    forget_masters_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
