//! Agents per architecture: an x86_64 controller manages `cs-arm`, whose
//! `uname -m` says aarch64, with a real aarch64 build of the fixture (run
//! there by qemu-user through binfmt_misc), picked by the bootstrap in the
//! same round trip; other hosts keep getting this program.

use std::path::PathBuf;
use std::time::Duration;

use chopsticks::{Error, Group, Tunnel, TunnelBuilder};
use chopsticks_tests::{add, machine, test_ssh_config};

/// The aarch64 fixture `tests/setup.sh` builds.
fn aarch64_agent() -> PathBuf {
    let dir = std::env::var_os("CHOPSTICKS_TESTHOSTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts"));
    let path = dir.join("agents/fixture-aarch64");
    assert!(
        path.exists(),
        "no aarch64 agent at {}: tests/setup.sh builds it (rustup target add \
         aarch64-unknown-linux-musl; qemu-user-static registered in binfmt_misc); see its \
         warning",
        path.display()
    );
    path
}

/// The tests here empty cs-arm's cache: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn builder(alias: &str) -> TunnelBuilder {
    Tunnel::builder(alias)
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(30))
        .upload_timeout(Duration::from_secs(60))
}

fn wipe_cache(alias: &str) {
    let config = test_ssh_config();
    let out = std::process::Command::new("ssh")
        .args(["-F", config.to_str().unwrap(), alias])
        .arg("rm -rf ~/.cache/chopsticks-* /dev/shm/chopsticks-* /tmp/chopsticks-*")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_aarch64_host_runs_the_aarch64_agent_and_others_this_program() {
    let _one = serial();
    let agent = aarch64_agent();
    wipe_cache("cs-arm");
    let t = builder("cs-arm")
        .agent_binary_for("aarch64", &agent)
        .connect()
        .unwrap();
    assert!(t.uploaded(), "the first connection uploads");
    assert_eq!(t.call(machine, ()).unwrap(), "aarch64");
    assert_eq!(t.call(add, (20, 22)).unwrap(), 42);
    drop(t);
    // Warm: the aarch64 agent is found in the cache by its own hash.
    let t = builder("cs-arm")
        .agent_binary_for("arm64", &agent)
        .connect()
        .unwrap();
    assert!(
        !t.uploaded(),
        "the second connection finds the cached agent"
    );
    assert_eq!(t.call(machine, ()).unwrap(), "aarch64");
    // One group, one map, two machines.
    let config = test_ssh_config();
    let group = Group::new(["cs-arm", "cs-deb12"]).configure(move |b| {
        b.ssh_config(&config)
            .connect_timeout(Duration::from_secs(30))
            .agent_binary_for("aarch64", &agent)
    });
    let machines: Vec<String> = group
        .call(machine, ())
        .into_iter()
        .map(|(host, r)| format!("{host}={}", r.unwrap()))
        .collect();
    assert_eq!(machines, ["cs-arm=aarch64", "cs-deb12=x86_64"]);
}

#[test]
fn a_host_of_a_machine_without_an_agent_names_it_and_the_build_command() {
    let _one = serial();
    wipe_cache("cs-arm");
    let err = builder("cs-arm").connect().unwrap_err();
    assert!(matches!(err, Error::Bootstrap { .. }), "{err:?}");
    let text = err.to_string();
    for said in [
        "the host runs Linux aarch64, and there is no agent for it",
        "cargo build --release --target aarch64-unknown-linux-musl",
        "cargo zigbuild",
        "agent_binary_for(\"aarch64\", path)",
        "CHOPSTICKS_AGENT_BINARY_AARCH64",
    ] {
        assert!(text.contains(said), "{said:?} in {text}");
    }
}

#[test]
fn an_unknown_architecture_is_a_config_error() {
    let err = builder("cs-arm")
        .agent_binary_for("vax", "/nonexistent")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("no such architecture"), "{err}");
}
