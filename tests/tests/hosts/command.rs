//! Command tunnels: the core suite through `nsenter` into the namespaces of
//! a running test container, and what a bad command says.

use std::time::Duration;

use chopsticks::{Error, Group, Host, Tunnel, TunnelBuilder};
use chopsticks_tests::*;

use crate::suite::Target;

/// `nsenter -t PID -a`: every namespace of the deb12 container's sshd.
fn nsenter(pid: &str) -> [String; 4] {
    ["nsenter", "-t", pid, "-a"].map(str::to_owned)
}

/// A target of the core suite (`suite_targets!` in `main.rs`).
pub(crate) const NSENTER: Target = Target {
    host: "deb12-ns",
    connect: || {
        TunnelBuilder::command("deb12-ns", nsenter(&test_container_pid("deb12")))
            .connect_timeout(Duration::from_secs(20))
            .connect()
            .unwrap_or_else(|e| panic!("nsenter into the deb12 container: {e}"))
    },
    // nsenter ends itself with the signal that ended its child.
    killed: "signal 9",
    elsewhere: Some(("cs-deb12", "172.29.155.11")),
};

#[test]
fn a_command_tunnel_runs_where_the_command_goes() {
    let pid = test_container_pid("busybox");
    let t = Tunnel::command("bb", nsenter(&pid)).unwrap();
    assert_eq!(t.host(), "bb");
    assert_eq!(
        t.call(chopsticks::facts::hostname, ()).unwrap(),
        "cs-busybox"
    );
    // sudo applies to command tunnels too (root to deploy's uid and back
    // is not needed: sudo -u root as root).
    let t = TunnelBuilder::command("bb-sudo", nsenter(&test_container_pid("deb12")))
        .sudo("root")
        .connect()
        .unwrap();
    assert_eq!(t.call(whoami, ()).unwrap().1, 0);
}

#[test]
fn a_command_tunnel_can_reach_this_machine_too() {
    // `env` runs its arguments here: the bootstrap and cache work as on a
    // host (the agent is cached in this user's ~/.cache).
    let t = Tunnel::command("here", ["env"]).unwrap();
    assert_eq!(
        t.call(chopsticks::facts::hostname, ()).unwrap(),
        chopsticks::facts::hostname().unwrap()
    );
    let (exe, _) = t.call(whoami, ()).unwrap();
    assert!(exe.contains("chopsticks-"), "runs from the cache: {exe}");
    // A local tunnel has no `sudo`; the error says how to get one.
    let err = TunnelBuilder::local().sudo("root").connect().unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("TunnelBuilder::command"), "{err}");
}

#[test]
fn a_missing_program_or_an_empty_command_says_so() {
    let err = Tunnel::command("x", ["/nonexistent/kubectl", "exec"]).unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("installed and on PATH"), "{err}");
    let err = Tunnel::command("x", Vec::<String>::new()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let err = TunnelBuilder::command("x", ["true"])
        .user("deploy")
        .connect()
        .unwrap_err();
    assert!(err.to_string().contains("`user` does not apply"), "{err}");
}

#[test]
fn a_command_that_gives_no_shell_fails_with_advice() {
    // `env -i PATH=/nowhere` runs its arguments without any `sh` to find.
    let err = Tunnel::command("no-sh", ["env", "-i", "PATH=/nowhere"]).unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("sh -c"), "{text}");
    // A command that ends at once, without running the bootstrap.
    let err = Tunnel::command("quits", ["true"]).unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(
        err.to_string().contains("exited before saying hello"),
        "{err}"
    );
}

#[test]
fn every_kind_works_in_one_group_with_shared_options() {
    let hosts: Vec<Host> = vec![
        Tunnel::builder("cs-deb12")
            .ssh_config(test_ssh_config())
            .into(),
        TunnelBuilder::docker(test_container("busybox")).into(),
        TunnelBuilder::command("deb12-ns", nsenter(&test_container_pid("deb12"))).into(),
        TunnelBuilder::local().into(),
    ];
    let group = Group::new(hosts)
        .progress(false)
        .configure(|b| b.connect_timeout(Duration::from_secs(20)))
        .call_timeout(Duration::from_secs(60));
    let names = group.call(chopsticks::facts::hostname, ());
    let names: Vec<_> = names
        .raise_failures()
        .unwrap()
        .into_iter()
        .map(|(host, name)| format!("{host}={name}"))
        .collect();
    let here = chopsticks::facts::hostname().unwrap();
    assert_eq!(
        names,
        [
            "cs-deb12=cs-deb12".to_owned(),
            "chopsticks-test-busybox=cs-busybox".to_owned(),
            "deb12-ns=cs-deb12".to_owned(),
            format!("localhost={here}"),
        ]
    );
}

/// The agent that greets must be the one the controller shipped: a host
/// whose shell starts the agent with another hash than the bootstrap
/// installed (here a wrapper rewrites what the script tells the agent) is
/// refused at the handshake, before any call.
#[test]
fn an_agent_that_reports_another_hash_than_was_shipped_is_refused() {
    // The kind appends `sh -c <script>`: $1 $2 $3 in the wrapper.
    let wrapper = r#"s=$(printf '%s' "$3" | sed 's/CHOPSTICKS_AGENT_SHA256=\$H/CHOPSTICKS_AGENT_SHA256=0000/'); exec sh -c "$s""#;
    let err = Tunnel::command("rewritten", ["sh", "-c", wrapper, "wrapper"]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(
        text.contains("the agent was started for the executable 0000")
            && text.contains("this program sent"),
        "{text}"
    );
    // The same wrapper leaving the script alone starts fine.
    let plain = r#"exec sh -c "$3""#;
    let t = Tunnel::command("plain", ["sh", "-c", plain, "wrapper"]).unwrap();
    assert_eq!(t.call(add, (1, 1)).unwrap(), 2);
}
