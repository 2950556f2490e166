//! Passwords from a password source: ssh's through askpass (this test
//! binary, started again in its askpass mode), sudo's once over the
//! channel. The password is in no process's argument vector or environment
//! on either side, and a wrong one is a clear error within the connect
//! bound.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chopsticks::{Error, PasswordFor, Tunnel};
use chopsticks_tests::{processes_mentioning, test_env, test_host, test_ssh_config, whoami};

fn password() -> String {
    test_env("CHOPSTICKS_TEST_PWUSER_PASSWORD")
}

/// A source that answers `answer` and records what it was asked.
fn recording(answer: String) -> (Asked, Source) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    let source = move |p: &chopsticks::PasswordPrompt<'_>| {
        log.lock().unwrap().push((p.host.to_owned(), p.purpose));
        Some(answer.clone())
    };
    (asked, Box::new(source))
}

/// What a source was asked: host and purpose.
type Asked = Arc<Mutex<Vec<(String, PasswordFor)>>>;

type Source = Box<dyn Fn(&chopsticks::PasswordPrompt<'_>) -> Option<String> + Send + Sync>;

/// The password is in no process's command line or environment, here
/// (the same function, called locally) or on `t`'s host.
fn assert_shown_nowhere(t: &Tunnel) {
    assert_eq!(
        processes_mentioning(password()),
        Vec::<String>::new(),
        "here"
    );
    assert_eq!(
        t.call(processes_mentioning, (password(),)).unwrap(),
        Vec::<String>::new(),
        "on the host"
    );
}

#[test]
fn a_password_login_goes_through_askpass_and_shows_nowhere() {
    let (asked, source) = recording(password());
    let t = test_host("cs-deb12-pwlogin")
        .password_source(source)
        .connect()
        .unwrap();
    let (_, uid) = t.call(whoami, ()).unwrap();
    assert_eq!(uid, 1006, "logged in as pwlogin");
    assert_eq!(
        *asked.lock().unwrap(),
        [("cs-deb12-pwlogin".to_owned(), PasswordFor::Login)]
    );
    assert_shown_nowhere(&t);
}

#[test]
fn a_wrong_password_is_a_connect_error_within_the_bound() {
    let started = Instant::now();
    let (asked, source) = recording("not-the-password".into());
    let err = test_host("cs-deb12-pwlogin")
        .password_source(source)
        .connect()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("refused the password the password source gave"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    assert_eq!(asked.lock().unwrap().len(), 1, "ssh asks once");
}

#[test]
fn without_a_source_nothing_prompts_and_a_refusing_source_is_an_error() {
    let err = test_host("cs-deb12-pwlogin").connect().unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
    let err = test_host("cs-deb12-pwlogin")
        .password_source(|_| None)
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the password source gave none"),
        "{err}"
    );
}

#[test]
fn sudo_asks_the_source_once_over_the_channel() {
    let (asked, source) = recording(password());
    let t = test_host("cs-deb12-pw")
        .sudo("root")
        .password_source(source)
        .connect()
        .unwrap();
    let (_, uid) = t.call(whoami, ()).unwrap();
    assert_eq!(uid, 0, "the agent runs as root");
    // The login is by key: only sudo asked.
    assert_eq!(
        *asked.lock().unwrap(),
        [("cs-deb12-pw".to_owned(), PasswordFor::Sudo)]
    );
    assert_shown_nowhere(&t);
}

#[test]
fn a_wrong_sudo_password_is_an_error_within_the_bound() {
    let started = Instant::now();
    let (asked, source) = recording("not-the-password".into());
    let err = test_host("cs-deb12-pw")
        .sudo("root")
        .password_source(source)
        .connect()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    let text = err.to_string();
    assert!(text.contains("sudo refused the password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert_eq!(asked.lock().unwrap().len(), 1);
}

/// A tool on the CLI kit asks once on the terminal with `-k`, as
/// `ansible -k` does (`script` gives it a terminal here).
#[test]
fn a_kit_tool_asks_on_the_terminal_with_dash_k() {
    use std::io::Write;
    let config = test_ssh_config();
    let command = format!(
        "{} -k -F {} -H cs-deb12-pwlogin",
        env!("CARGO_BIN_EXE_facts"),
        config.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        // No run journal in the test runner's home (script passes the
        // environment on).
        .env("CHOPSTICKS_NO_JOURNAL", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1), from util-linux, gives the tool a terminal");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", password()).unwrap();
    // stdin stays open until the tool is done: `script` ends with it.
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("password for cs-deb12-pwlogin: "), "{text}");
    assert!(text.contains("cs-deb12-pwlogin cs-deb12"), "{text}");
}

/// A jump host's ssh asks for its own login: the source is not asked, and
/// the target's password never goes to the jump host.
#[test]
fn a_jump_hosts_prompt_is_not_answered_with_the_targets_password() {
    let (asked, source) = recording(password());
    let err = test_host("cs-inner-nojump")
        .proxy_jump("cs-deb12-pwlogin")
        .password_source(source)
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("through the jump host cs-deb12-pwlogin"),
        "{err}"
    );
    assert_eq!(
        *asked.lock().unwrap(),
        Vec::new(),
        "the source was not asked"
    );
}
