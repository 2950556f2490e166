//! Transfers, pipelined calls and cold fan-out as a user measures them: a
//! tool in a crate of its own (`benches/user/tool.rs`, written to
//! `target/user-bench/` with a manifest depending on this chopsticks by
//! path), built with `cargo build --release`, the library's public API
//! only, a fresh `Tunnel::builder(host).ssh_config(..)` to the test hosts
//! of `tests/setup.sh`, each figure beside its floor from the same run:
//!
//! - put and fetch of 64 MiB and 1 GiB (incompressible) on a new tunnel vs
//!   `ssh host 'cat > f'` (and `cat > f && sync f`: put's file is on disk
//!   when it returns) and `ssh host 'cat f'`, each over a connection of its
//!   own fed through a pipe (as a tunnel's is), timed from when it is up;
//! - 5 batches of 1000 `call_async` of a trivial `#[remote]` fn from one
//!   thread, then waited in order, the first batch included, over one
//!   tunnel and over ten (round robin), vs 1000 lines through `ssh host
//!   cat`;
//! - 50 hosts (the fleet aliases `cs-many-N`, the loopback sshd), one call
//!   each over new connections (`Group::call`), vs 50 parallel `ssh host
//!   true`, and one host's phases (connect, first call, close);
//! - the same 50 hosts again over the ssh masters a first run left
//!   (`control_persist`, a new `Group`, one call each), vs 50 parallel
//!   `ssh host true` over the same masters: a zero-change rerun's
//!   connection part (sake's four tasks need `--bench fleet`'s containers),
//!   and what one host costs the machine's CPU: `ssh true`, with the
//!   bootstrap's `sh`, a whole tunnel.
//!
//! The fan-outs take turns going first, and each starts once the one
//! before had a second to end (sshd's session teardown): neither pays the
//! other's tail. Beside each, the CPU the whole machine spent (the hosts
//! are on it too), and the median of the per-round ratios.
//!
//! `cargo bench -p chopsticks --bench user [-- WHAT...]`, WHAT among
//! `transfer`, `calls`, `cold`, `rerun` (default all); `CHOPSTICKS_BENCH_QUICK=1`
//! skips 1 GiB. `CHOPSTICKS_PATH=/other/checkout/chopsticks` measures
//! another version.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

const TOOL: &str = include_str!("user/tool.rs");

fn build(dir: &Path, chopsticks: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"user-bench-tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nchopsticks = {{ path = {:?} }}\n\n[workspace]\n",
        chopsticks.display()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), TOOL).unwrap();
    let status = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(["build", "--quiet", "--release"])
        .status()
        .expect("cargo");
    assert!(status.success(), "building the tool");
    dir.join("target/release/user-bench-tool")
}

fn main() {
    let config = common::ssh_config();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chopsticks = std::env::var_os("CHOPSTICKS_PATH").map_or(here.clone(), PathBuf::from);
    let dir = here.join("../target/user-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::copy(here.join("../Cargo.lock"), dir.join("Cargo.lock"));
    let tool = build(&dir, &chopsticks);
    let what: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |w: &str| what.is_empty() || what.iter().any(|a| a == w);
    let quick = std::env::var_os("CHOPSTICKS_BENCH_QUICK").is_some();
    let run = |args: &[&str]| {
        let status = Command::new(&tool)
            .arg(&config)
            .args(args)
            .status()
            .expect("run the tool");
        assert!(status.success(), "the tool failed: {args:?}");
    };
    println!("chopsticks at {}", chopsticks.display());
    if wants("transfer") {
        run(&["transfer", "cs-local", "64", "5"]);
        if !quick {
            run(&["transfer", "cs-local", "1024", "3"]);
        }
    }
    if wants("calls") {
        run(&["calls", "cs-local", "1", "5"]);
        run(&["calls", "cs-local", "10", "5"]);
    }
    if wants("cold") {
        run(&["cold", "cs-many-", "50", "3"]);
    }
    if wants("rerun") {
        run(&["rerun", "cs-many-", "50", "5"]);
    }
}
