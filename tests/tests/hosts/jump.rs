//! Jump hosts: `cs-inner` listens only inside `cs-jump`'s network namespace
//! (127.0.0.1:2222 there), so the controller reaches it only through
//! `cs-jump`: by `ProxyJump` in the ssh config (`cs-inner`), or by the
//! builder's `proxy_jump` (`cs-inner-nojump` has the address and no jump).

use std::time::{Duration, Instant};

use chopsticks::{Error, Group};
use chopsticks_tests::{add, role, test_host, test_ssh_config};

#[test]
fn proxy_jump_in_the_ssh_config_reaches_the_inner_host() {
    let t = test_host("cs-inner").connect().unwrap();
    assert_eq!(role(&t), "cs-inner");
    assert_eq!(t.call(add, (2, 3)).unwrap(), 5);
}

#[test]
fn proxy_jump_from_the_builder_reaches_the_inner_host() {
    let err = test_host("cs-inner-nojump")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .unwrap_err();
    assert!(err.is_unreachable(), "without a jump host: {err}");
    let t = test_host("cs-inner-nojump")
        .proxy_jump("cs-jump")
        .connect()
        .unwrap();
    assert_eq!(role(&t), "cs-inner");
    // A group of inner hosts, each through the jump host.
    let config = test_ssh_config();
    let group = Group::new(["cs-inner", "cs-inner-nojump"])
        .configure(move |b| b.ssh_config(&config).proxy_jump("cs-jump"));
    for (host, result) in &group.call(add, (1, 1)) {
        assert_eq!(result.as_ref().ok(), Some(&2), "{host}: {result:?}");
    }
}

/// A jump host that cannot be reached is named in the error, and the
/// error comes within the connect timeout.
#[test]
fn a_failing_jump_host_is_named() {
    for (jump, said) in [
        ("cs-refused", "nothing listens"),
        ("cs-no-such-host.invalid", "does not resolve"),
    ] {
        let started = Instant::now();
        let err = test_host("cs-inner-nojump")
            .proxy_jump(jump)
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("through the jump host {jump}")),
            "{text}"
        );
        assert!(text.contains(said), "{text}");
    }
    // Through the config's ProxyJump too: the jump host's name comes from
    // ssh's own reading of the config.
    let err = test_host("cs-inner")
        .ssh_option("HostName=127.0.0.2")
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("through the jump host cs-jump"), "{text}");
    assert!(text.contains("the jump host could not reach"), "{text}");
}

#[test]
fn a_jump_host_that_looks_like_an_option_is_refused() {
    let err = test_host("cs-inner-nojump")
        .proxy_jump("-oProxyCommand=touch /tmp/x")
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

/// A tool built on the CLI kit takes `-J` as ssh does.
#[test]
fn a_kit_tool_reaches_the_inner_host_with_dash_j() {
    let config = test_ssh_config();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facts"))
        .args(["-F", config.to_str().unwrap(), "-J", "cs-jump"])
        .args(["-H", "cs-inner-nojump"])
        // No run journal in the test runner's home.
        .env("CHOPSTICKS_NO_JOURNAL", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("cs-inner-nojump"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
