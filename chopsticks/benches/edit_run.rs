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
//! Then a tool on the kit: the deploy example in a crate of its own (with
//! chopsticks-cli and clap), debug and release, its `--check --sudo` on
//! three hosts (cs-systemd, cs-deb12, cs-deb12-deploy, whose sudo makes it
//! root as the others are): the first after a rebuild, and
//! the checks after, beside `ssh true` on the same hosts, one after the
//! other (the floor of a tool that connects them in parallel is the
//! slowest).
//!
//! `CHOPSTICKS_PATH=/other/checkout/chopsticks` measures another version;
//! `EDIT_RUN_NO_KIT=1` leaves the kit tool out, `EDIT_RUN_ONLY_KIT=1` measures
//! only it.

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

/// Where this run's edits start: new every run, since the same source
/// builds the same binary, which a host has cached from a run before, and
/// the first run after a rebuild would upload nothing.
fn first_edit() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs % 1_000_000) as u32 * 1000
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

/// Writes the deploy example's crate, with `edit` in its binary.
fn write_kit_crate(dir: &Path, chopsticks: &Path, edit: u32) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let cli = chopsticks.join("../chopsticks-cli");
    let manifest = format!(
        "[package]\nname = \"edit-run-kit\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nchopsticks = {{ path = {:?}, features = [\"template\"] }}\n\
         chopsticks-cli = {{ path = {:?} }}\n\
         clap = {{ version = \"4\", default-features = false, features = [\"std\", \"derive\", \
         \"help\", \"usage\", \"error-context\", \"suggestions\"] }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        chopsticks.display(),
        cli.display()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let examples = chopsticks.join("examples");
    let source = std::fs::read_to_string(examples.join("deploy.rs")).unwrap();
    let source = format!("{source}\n#[used]\nstatic EDIT: u32 = {edit};\n");
    std::fs::write(dir.join("src/main.rs"), source).unwrap();
    std::fs::copy(
        examples.join("cs-hello.conf.j2"),
        dir.join("src/cs-hello.conf.j2"),
    )
    .unwrap();
}

/// One `--check` of the deploy tool on `hosts`.
fn check(tool: &Path, hosts: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(tool)
        .arg("-F")
        .arg(ssh_config())
        .arg("-H")
        .arg(hosts.join(","))
        .args(["--check", "--sudo", "-q"])
        .output()
        .expect("run the deploy tool");
    let took = start.elapsed();
    let code = out.status.code();
    assert!(
        code == Some(0),
        "{code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The deploy tool, debug and release: the first `--check` after a
/// rebuild and the checks after, beside `ssh true` on each host.
fn kit(chopsticks: &Path, here: &Path) {
    const HOSTS: [&str; 3] = ["cs-systemd", "cs-deb12", "cs-deb12-deploy"];
    let dir = here.join("../target/edit-run/kit");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::copy(here.join("../Cargo.lock"), dir.join("Cargo.lock"));
    let mut edit = first_edit();
    let mut after = Vec::new();
    for release in [false, true] {
        write_kit_crate(&dir, chopsticks, edit);
        let tool = build(&dir, release);
        let size = std::fs::metadata(&tool).map_or(0, |m| m.len());
        let profile = if release { "release" } else { "debug" };
        let floors: Vec<Duration> = HOSTS.iter().map(|h| ssh_true(h)).collect();
        let slowest = floors.iter().max().copied().unwrap_or_default();
        let mut first = Vec::new();
        for _ in 0..3 {
            edit += 1;
            write_kit_crate(&dir, chopsticks, edit);
            build(&dir, release);
            first.push(check(&tool, &HOSTS));
        }
        let warm = median((0..5).map(|_| check(&tool, &HOSTS)).collect());
        let first = median(first);
        println!(
            "kit tool (deploy --check on {}), {profile} build, {size} bytes: ssh true {} \
             (slowest of the three), first check after a rebuild {} (+{}), checks after {}",
            HOSTS.join(","),
            floors.iter().map(|d| ms(*d)).collect::<Vec<_>>().join("/"),
            ms(first),
            ms(first.saturating_sub(slowest)),
            ms(warm)
        );
        after.push((first, warm));
    }
    if let [(debug_first, debug_warm), (release_first, release_warm)] = after[..] {
        println!(
            "kit tool: debug/release first check after a rebuild {:.2}x, checks after {:.2}x",
            debug_first.as_secs_f64() / release_first.as_secs_f64(),
            debug_warm.as_secs_f64() / release_warm.as_secs_f64()
        );
    }
}

/// Builds the crate in `dir` (every tool shares one target directory, so
/// that their common dependencies are built once) and returns its binary.
fn build(dir: &Path, release: bool) -> PathBuf {
    let target = dir.join("../target");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet"]);
    if release {
        cargo.arg("--release");
    }
    assert!(
        cargo.status().expect("cargo").success(),
        "building the tool"
    );
    let name = dir.file_name().unwrap().to_string_lossy();
    target
        .join(if release { "release" } else { "debug" })
        .join(format!("edit-run-{name}"))
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
    // "chopsticks: uploading PATH (N bytes, M sent, FORM)", or from an
    // older version "(N bytes, M compressed)"
    let uploaded = stderr
        .lines()
        .filter_map(|l| {
            let (_, sizes) = l.split_once(" bytes, ")?;
            let sent = sizes.split_once(' ')?.0;
            sent.parse::<u64>().ok()
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
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::copy(here.join("../Cargo.lock"), dir.join("Cargo.lock"));
    let hosts = common::hosts_or_default();
    println!("chopsticks at {}", chopsticks.display());
    let mut edit = first_edit();
    let profiles = match std::env::var_os("EDIT_RUN_ONLY_KIT") {
        Some(_) => vec![],
        None => vec![false, true],
    };
    for release in profiles {
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
    if std::env::var_os("EDIT_RUN_NO_KIT").is_none() {
        kit(&chopsticks, &here);
    }
}
