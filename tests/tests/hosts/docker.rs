//! Docker tunnels: the core suite over `docker exec` into a running test
//! container, and what docker's failures say.

use std::time::Duration;

use chopsticks::{Error, Tunnel, TunnelBuilder};
use chopsticks_tests::*;

use crate::suite::Target;

/// A target of the core suite (`suite_targets!` in `main.rs`).
pub(crate) const DOCKER: Target = Target {
    host: "chopsticks-test-deb12",
    connect: || {
        TunnelBuilder::docker(test_container("deb12"))
            .connect_timeout(Duration::from_secs(20))
            .connect()
            .unwrap_or_else(|e| panic!("docker exec into the deb12 container: {e}"))
    },
    // docker exec reports a process killed by a signal as 128 + signal.
    killed: "status 137",
    elsewhere: Some(("cs-deb12", "172.29.155.11")),
};

#[test]
fn a_docker_tunnel_runs_inside_the_container() {
    let t = Tunnel::docker(&test_container("busybox")).unwrap();
    // The container's own hostname and address, not this machine's.
    assert_eq!(
        t.call(chopsticks::facts::hostname, ()).unwrap(),
        "cs-busybox"
    );
    assert_eq!(
        t.call(chopsticks::facts::ip, ()).unwrap().to_string(),
        "172.29.155.13"
    );
    assert_eq!(t.host(), "chopsticks-test-busybox");
    // Cached there by hash: the next connect does not upload.
    let again = Tunnel::docker(&test_container("busybox")).unwrap();
    assert!(!again.uploaded());
    assert_eq!(again.call(add, (40, 2)).unwrap(), 42);
}

#[test]
fn docker_tunnels_take_the_shared_options() {
    let container = test_container("deb12");
    let t = TunnelBuilder::docker(&container)
        .user("deploy")
        .call_timeout(Duration::from_millis(300))
        .connect()
        .unwrap();
    assert_eq!(t.call(whoami, ()).unwrap().1, 1001, "runs as deploy");
    let err = t.call(sleep_ms, (5_000,)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let root = TunnelBuilder::docker(&container)
        .user("deploy")
        .sudo("root")
        .connect()
        .unwrap();
    assert_eq!(
        root.call(whoami, ()).unwrap().1,
        0,
        "sudo runs the agent as root"
    );
    let err = TunnelBuilder::docker(&container)
        .port(22)
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("`port` is an ssh option"), "{err}");
}

#[test]
fn an_old_glibc_container_gets_the_musl_advice_and_runs_the_portable_agent() {
    let container = test_container("deb11");
    let err = Tunnel::docker(&container).unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(
        err.to_string().contains("x86_64-unknown-linux-musl"),
        "{err}"
    );
    let t = TunnelBuilder::docker(&container)
        .agent_binary(portable_fixture())
        .connect()
        .unwrap();
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
}

#[test]
fn a_missing_container_says_so() {
    let err = Tunnel::docker("chopsticks-test-no-such-container").unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no container named"), "{text}");
    assert!(text.contains("docker ps"), "{text}");
}

#[test]
fn a_stopped_container_says_how_to_start_it() {
    let image = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.Config.Image}}",
            &test_container("deb12"),
        ])
        .output()
        .unwrap();
    let image = String::from_utf8_lossy(&image.stdout).trim().to_owned();
    let name = format!("chopsticks-test-stopped-{}", std::process::id());
    let created = std::process::Command::new("docker")
        .args(["create", "--name", &name, &image, "true"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let err = Tunnel::docker(&name).unwrap_err();
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &name])
        .output();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("docker start"), "{err}");
}

#[test]
fn an_option_looking_container_name_is_refused() {
    let err = Tunnel::docker("--privileged").unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}
