//! Where the test hosts are: the ssh_config, settings and portable agent
//! that `tests/setup.sh` leaves under `target/testhosts`, the containers
//! it runs, and tunnels to them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chopsticks::{Tunnel, TunnelBuilder};

use crate::fixtures::read_file;

/// The ssh_config of the test hosts that `tests/setup.sh` starts
/// (`CHOPSTICKS_TEST_SSH_CONFIG`, or `target/testhosts/ssh_config`).
///
/// # Panics
/// When the file is missing, with what to run to get it.
pub fn test_ssh_config() -> PathBuf {
    let path = std::env::var_os("CHOPSTICKS_TEST_SSH_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts/ssh_config")
        });
    assert!(
        path.exists(),
        "no test hosts: {} is missing. Start them with `tests/setup.sh` (the README's test \
         command, ./ci.sh, does it), or point CHOPSTICKS_TEST_SSH_CONFIG at an ssh_config \
         that defines the cs-* hosts",
        path.display()
    );
    path
}

/// The name of the running test container for `host` (`deb12`, `deb11`,
/// `busybox`, `noexec`), as `tests/setup.sh` starts it.
///
/// # Panics
/// When the container does not run, with what to run to get it.
pub fn test_container(host: &str) -> String {
    let prefix = std::env::var("CHOPSTICKS_TEST_CONTAINER_PREFIX")
        .unwrap_or_else(|_| "chopsticks-test-".to_owned());
    let name = format!("{prefix}{host}");
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", &name])
        .output();
    let running =
        matches!(&out, Ok(out) if String::from_utf8_lossy(&out.stdout).starts_with("true "));
    assert!(
        running,
        "the test container {name} does not run ({out:?}). Start the test hosts with \
         `tests/setup.sh` (the README's test command, ./ci.sh, does it); it needs a running \
         Docker engine"
    );
    name
}

/// The host PID of the main process of the running test container for
/// `host`, to enter its namespaces with `nsenter -t PID`.
pub fn test_container_pid(host: &str) -> String {
    let name = test_container(host);
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", &name])
        .output()
        .expect("run docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fixture agent that runs on old-glibc hosts (a static musl build, or
/// one linked against glibc 2.28), which `tests/setup.sh` puts beside the
/// test hosts' ssh_config.
pub fn portable_fixture() -> PathBuf {
    let path = test_ssh_config().with_file_name("agents").join("fixture");
    assert!(
        path.exists(),
        "no portable agent at {}: run `tests/setup.sh` (the README's test command does); it \
         builds the fixture for x86_64-unknown-linux-musl (rustup target add) or, failing \
         that, against glibc 2.28 with cargo-zigbuild",
        path.display()
    );
    path
}

/// A setting of the test hosts from the `env` file `tests/setup.sh` writes
/// beside their ssh_config (`CHOPSTICKS_TEST_FLEET_PORT` ...).
///
/// # Panics
/// When the file or the setting is missing, with what to run to get it.
pub fn test_env(key: &str) -> String {
    let path = test_ssh_config().with_file_name("env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run `tests/setup.sh`", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no {key} in {}; run `tests/setup.sh`", path.display()))
}

/// A builder for `alias`, a host of [`test_ssh_config`], with the connect
/// bound the tests allow a loaded machine.
pub fn test_host(alias: &str) -> TunnelBuilder {
    Tunnel::builder(alias)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20))
}

/// What `/etc/cs-role` says on `t`'s host (`cs-inner` there; the test
/// hosts of `tests/setup.sh` that share a hostname are told apart by it).
///
/// # Panics
/// When the host has no such file.
pub fn role(t: &Tunnel) -> String {
    t.call(read_file, ("/etc/cs-role".into(),))
        .expect("/etc/cs-role on the host")
        .trim()
        .to_owned()
}

/// Where `control_persist` tunnels keep their masters' sockets and records:
/// `$XDG_RUNTIME_DIR/chopsticks-ssh`, else `~/.ssh/chopsticks-ssh`.
pub fn ssh_control_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".ssh"))
        .join("chopsticks-ssh")
}

/// `alias` over a connection shared through an ssh master
/// (`control_persist`, ten seconds): after the first, its tunnels open
/// their sessions on the master without starting `ssh`.
pub fn shared_host(config: &Path, alias: &str) -> TunnelBuilder {
    Tunnel::builder(alias)
        .ssh_config(config)
        .control_persist(Duration::from_secs(10))
}

/// The tunnel a fixture binary's arguments name: `SSH_CONFIG HOST
/// [shared]` ([`shared_host`] with `shared`), or a local tunnel without
/// arguments.
///
/// # Errors
/// When it cannot connect.
pub fn tunnel_from_args() -> chopsticks::Result<Tunnel> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [config, host] => Tunnel::builder(host).ssh_config(config).connect(),
        [config, host, shared] if shared == "shared" => {
            shared_host(Path::new(config), host).connect()
        }
        _ => Tunnel::local(),
    }
}
