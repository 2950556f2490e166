//! The edit-run loop as a new user meets it: a small tool in a fresh crate
//! that depends on chopsticks, built with plain `cargo build` (no profile
//! overrides) and run against the test hosts of `tests/setup.sh`, beside
//! `ssh host true`: `cargo bench -p chopsticks --bench edit_run [-- HOST...]`
//! (default cs-local and cs-deb12).
//!
//! - first run after a rebuild: the source changes, cargo rebuilds (not
//!   timed), then one run: hashing, stripping, compressing and uploading;
//! - each run after: nothing changed;
//! - bytes uploaded, from the tool's debug log;
//! - the same for `--release`.
//!
//! `CHOPSTICKS_PATH=/other/checkout/chopsticks` measures another version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::ssh_config;

const MAIN: &str = r#"
use chopsticks::{facts, Tunnel};

struct Uploads;

impl log::Log for Uploads {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("chopsticks")
    }
    fn log(&self, r: &log::Record<'_>) {
        let text = r.args().to_string();
        if text.contains("uploading") {
            eprintln!("{text}");
        }
    }
    fn flush(&self) {}
}

#[chopsticks::main]
fn main() {
    let _ = log::set_logger(&Uploads);
    log::set_max_level(log::LevelFilter::Debug);
    let args: Vec<String> = std::env::args().collect();
    let t = Tunnel::builder(&args[2]).ssh_config(&args[1]).connect().expect("connect");
    println!("{} {}", t.call(facts::hostname, ()).expect("call"), EDIT);
}
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Writes the tool's crate, with `edit` in its source.
fn write_crate(dir: &Path, chopsticks: &Path, edit: u32) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"edit-run-tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nchopsticks = {{ path = {:?} }}\nlog = \"0.4\"\n\n[workspace]\n",
        chopsticks.display()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let source = format!("{MAIN}\nconst EDIT: u32 = {edit};\n");
    std::fs::write(dir.join("src/main.rs"), source).unwrap();
}

fn build(dir: &Path, release: bool) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(dir).args(["build", "--quiet"]);
    if release {
        cargo.arg("--release");
    }
    assert!(
        cargo.status().expect("cargo").success(),
        "building the tool"
    );
    dir.join("target")
        .join(if release { "release" } else { "debug" })
        .join("edit-run-tool")
}

/// One run of the tool: its time and the bytes it uploaded.
fn run(tool: &Path, host: &str) -> (Duration, u64) {
    let start = Instant::now();
    let out = Command::new(tool)
        .arg(ssh_config())
        .arg(host)
        .output()
        .expect("run the tool");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // "chopsticks: uploading PATH (N bytes, M compressed)"
    let uploaded = stderr
        .lines()
        .filter_map(|l| {
            l.rsplit_once(", ")?
                .1
                .strip_suffix(" compressed)")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    (took, uploaded)
}

fn ssh_true(host: &str) -> Duration {
    median(
        (0..5)
            .map(|_| {
                let start = Instant::now();
                let ok = Command::new("ssh")
                    .arg("-F")
                    .arg(ssh_config())
                    .args([host, "true"])
                    .status()
                    .expect("ssh");
                assert!(ok.success());
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chopsticks = std::env::var_os("CHOPSTICKS_PATH").map_or(here.clone(), PathBuf::from);
    let dir = here.join("../target/edit-run/tool");
    let _ = std::fs::copy(here.join("../Cargo.lock"), dir.join("Cargo.lock"));
    let hosts = common::hosts_or_default();
    println!("chopsticks at {}", chopsticks.display());
    let mut edit = 0;
    for release in [false, true] {
        write_crate(&dir, &chopsticks, edit);
        let tool = build(&dir, release);
        let size = std::fs::metadata(&tool).map_or(0, |m| m.len());
        let profile = if release { "release" } else { "debug" };
        println!("== {profile} build, {size} bytes");
        for host in &hosts {
            let floor = ssh_true(host);
            let mut first = Vec::new();
            let mut bytes = 0;
            for _ in 0..3 {
                edit += 1;
                write_crate(&dir, &chopsticks, edit);
                build(&dir, release);
                let (took, uploaded) = run(&tool, host);
                first.push(took);
                bytes = uploaded;
            }
            let after = median((0..5).map(|_| run(&tool, host).0).collect());
            let first = median(first);
            println!(
                "{host}: ssh true {}, first run after a rebuild {} (+{}), runs after {} ({:.2}x), \
                 uploaded {bytes} bytes",
                ms(floor),
                ms(first),
                ms(first.saturating_sub(floor)),
                ms(after),
                after.as_secs_f64() / floor.as_secs_f64()
            );
        }
    }
}
