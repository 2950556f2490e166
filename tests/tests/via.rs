//! Through a bastion's agent: `cs-jump`'s agent runs `ssh` to `cs-inner`
//! (reachable only from `cs-jump`, as `inner` or `inner-N` in the bastion's
//! own ssh config) and relays the session over the bastion's connection.
//! A binary of its own: it counts every `ssh` child of this process.

use std::time::{Duration, Instant};

use chopsticks::{Error, Group, Tunnel, TunnelBuilder};
use chopsticks_tests::{add, role, sleep_ms, test_ssh_config};

chopsticks::agent_test!();

/// One test at a time: they count this process's ssh children.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn bastion() -> Tunnel {
    Tunnel::builder("cs-jump")
        .ssh_config(test_ssh_config())
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .unwrap()
}

fn inner(name: &str, bastion: &Tunnel) -> TunnelBuilder {
    Tunnel::builder(name)
        .via(bastion)
        .connect_timeout(Duration::from_secs(30))
}

#[test]
fn an_inner_host_is_an_ordinary_tunnel_through_the_bastion() {
    let _one = serial();
    let bastion = bastion();
    let t = inner("inner", &bastion).connect().unwrap();
    assert_eq!(role(&t), "cs-inner");
    assert_eq!(t.call(add, (40, 2)).unwrap(), 42);
    // Files and deadlines work as on any tunnel.
    let data = vec![7u8; 3 << 20];
    t.put(chopsticks::Source::bytes(data.clone()), "/tmp/via-put")
        .run()
        .unwrap();
    let back = t.call(chopsticks_tests::digest, (data.clone(),)).unwrap();
    assert_eq!(back.0, data.len());
    t.set_call_timeout(Some(Duration::from_millis(300)));
    let err = t.call(sleep_ms, (5_000,)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    t.set_call_timeout(None);
    assert_eq!(t.call(add, (1, 1)).unwrap(), 2, "usable after a timeout");
}

#[test]
fn a_group_of_inner_hosts_shares_one_bastion_connection() {
    let _one = serial();
    let bastion = bastion();
    let hosts: Vec<String> = (1..=12).map(|i| format!("inner-{i}")).collect();
    let group = Group::new(hosts.iter().map(|h| inner(h, &bastion)).collect::<Vec<_>>());
    let results = group.call(add, (2, 3));
    for (host, result) in &results {
        assert_eq!(result.as_ref().ok(), Some(&5), "{host}: {result:?}");
    }
    // Still one ssh here: the bastion's.
    assert_eq!(ssh_children(), 1, "only the bastion's ssh runs here");
}

/// This process's `ssh` children.
fn ssh_children() -> usize {
    chopsticks_tests::children()
        .iter()
        .filter(|c| c.exe.ends_with("ssh"))
        .count()
}

#[test]
fn the_bastion_lost_mid_call_fails_inner_calls_at_once() {
    let _one = serial();
    let bastion = bastion();
    let t = inner("inner", &bastion)
        .call_timeout(Duration::from_secs(30))
        .connect()
        .unwrap();
    let call = t.call_async(sleep_ms, (20_000,));
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    bastion.close();
    let err = call.wait().unwrap_err();
    assert!(cut.elapsed() < Duration::from_secs(5), "{err}");
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    assert_eq!(err.host(), "inner");
}

#[test]
fn errors_name_the_bastion_and_nesting_is_bounded() {
    let _one = serial();
    let bastion = bastion();
    let err = inner("no-such-host.invalid", &bastion)
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("from cs-jump: ssh could not connect"),
        "{text}"
    );
    assert!(text.contains("does not resolve"), "{text}");

    let err = inner("inner", &bastion)
        .ssh_config("/etc/ssh/ssh_config")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");

    // Through an inner tunnel again: one level too deep.
    let t = inner("inner", &bastion).connect().unwrap();
    let err = inner("inner-2", &t).connect().unwrap_err();
    assert!(err.to_string().contains("agents nest too deep"), "{err}");
}

/// The bastion runs this program, so it sends its own copy to an inner
/// host that has none: the agent crosses the link to the bastion once.
#[test]
fn the_bastion_ships_its_own_agent_to_inner_hosts() {
    let _one = serial();
    let bastion = bastion();
    let wipe = std::process::Command::new("ssh")
        .args(["-F", test_ssh_config().to_str().unwrap(), "cs-jump"])
        .arg("ssh inner 'rm -rf ~/.cache/chopsticks-* /dev/shm/chopsticks-* /tmp/chopsticks-*'")
        .output()
        .unwrap();
    assert!(wipe.status.success(), "{wipe:?}");
    let t = inner("inner", &bastion).connect().unwrap();
    assert!(!t.uploaded(), "this program sent no agent: the bastion did");
    let (exe, _) = t.call(chopsticks_tests::whoami, ()).unwrap();
    let sha256 = t.agent_sha256().unwrap().to_owned();
    assert!(exe.ends_with(&sha256), "{exe} is the cached agent {sha256}");
    assert_eq!(t.call(add, (1, 2)).unwrap(), 3);
}

/// The bastion's call timeout bounds calls, not the inner tunnels' lives:
/// the relay under an inner tunnel has no deadline.
#[test]
fn an_inner_tunnel_outlives_the_bastions_call_timeout() {
    let _one = serial();
    let bastion = bastion();
    bastion.set_call_timeout(Some(Duration::from_secs(1)));
    let t = inner("inner", &bastion).connect().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(t.call(add, (2, 2)).unwrap(), 4);
}
