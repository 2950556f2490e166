//! What the SSH benchmarks share.

use std::path::PathBuf;

/// The ssh_config of the test hosts (`tests/setup.sh` starts them); exits
/// with a message when they are not there.
pub fn ssh_config() -> PathBuf {
    let path = std::env::var_os("CHOPSTICKS_TEST_SSH_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/testhosts/ssh_config")
        });
    if !path.exists() {
        eprintln!(
            "no test hosts ({} is missing): run tests/setup.sh first",
            path.display()
        );
        std::process::exit(2);
    }
    path
}

/// The hosts named on the command line (arguments not starting with `-`,
/// which cargo's bench flags do), or cs-local and cs-deb12.
#[allow(dead_code)] // not every bench takes hosts
pub fn hosts_or_default() -> Vec<String> {
    let hosts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if hosts.is_empty() {
        vec!["cs-local".to_owned(), "cs-deb12".to_owned()]
    } else {
        hosts
    }
}
