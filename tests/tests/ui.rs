//! Compile-fail tests: what `#[remote]`, `#[chopsticks::main]` and
//! `Tunnel::call` reject, and how the error reads. Each `ui/*.rs` holds one
//! mistake; its `.stderr` is the expected diagnostic.
//!
//! The `.stderr` files were made with rustc [`MADE_WITH`]; with it, they
//! must match exactly. Another compiler words its own diagnostics
//! differently, so there each case must still fail to compile, with each
//! of our macros' messages word for word and the compiler's by error code.
//!
//! Regenerate after a deliberate change with
//! `TRYBUILD=overwrite cargo test -p chopsticks-tests --test ui`, then read
//! the diff (and update [`MADE_WITH`] when the compiler changed).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `rustc --version` of the compiler the `.stderr` files were made with.
const MADE_WITH: &str = "rustc 1.95.0";

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn ui() {
    let version = rustc_version();
    if version.starts_with(&format!("{MADE_WITH} ")) {
        trybuild::TestCases::new().compile_fail("ui/*.rs");
    } else {
        eprintln!(
            "{} is not {MADE_WITH}: checking error codes and our own messages",
            version.trim()
        );
        any_compiler();
    }
}

/// The lines of a diagnostic that any compiler must give: our macros'
/// messages (`error: ...`) whole, the compiler's by code (`error[E0277]`).
fn essentials(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .map(|l| match l.strip_prefix("error[") {
            Some(rest) => format!("error[{}", rest.split(']').next().unwrap_or_default()) + "]",
            None => l.to_owned(),
        })
        .collect()
}

/// Compiles each case with trybuild in a scratch copy (overwrite mode
/// records what this compiler says), then compares the essentials.
fn any_compiler() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = here.join("../target/ui-any-compiler");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(here.join("ui"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    cases.sort();
    for case in &cases {
        std::fs::copy(case, scratch.join(case.file_name().unwrap())).unwrap();
    }
    // SAFETY (edition 2021: a safe call): this test binary runs one test.
    std::env::set_var("TRYBUILD", "overwrite");
    trybuild::TestCases::new().compile_fail(scratch.join("*.rs"));
    for case in &cases {
        let name = case.with_extension("stderr");
        let name = name.file_name().unwrap();
        let expected = std::fs::read_to_string(here.join("ui").join(name)).unwrap();
        let got = std::fs::read_to_string(scratch.join(name)).unwrap_or_default();
        let got = essentials(&got);
        for line in essentials(&expected) {
            assert!(
                got.contains(&line),
                "{}: this compiler does not say {line:?}; it says {got:?}",
                case.display()
            );
        }
    }
}
