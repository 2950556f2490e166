//! What bounds the costs that grow with input, measured as a user's debug
//! build pays them: `cargo bench -p chopsticks --bench bounds --profile dev`
//! (a release build: without `--profile dev`).
//!
//! - planning `ops::file` over a 1 MB and a 16 MB file whose every line
//!   changes (Myers' diff is quadratic in the changed lines: 36 s for
//!   500 KB in a release build before the diff had a time bound), in check
//!   mode, beside reading the file once (the floor).

use std::time::{Duration, Instant};

use chopsticks::ops::{self, Mode};

fn main() {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("bounds bench ({profile} build)");
    let dir = std::env::temp_dir().join(format!("cs-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    for (mb, limit) in [(1, Duration::from_secs(1)), (16, Duration::from_secs(3))] {
        let path = dir.join(format!("rewrite-{mb}"));
        let old = lines("old", mb * 1_000_000);
        let new = lines("new", mb * 1_000_000);
        std::fs::write(&path, &old).expect("the old content");
        let start = Instant::now();
        let read = std::fs::read(&path).expect("reads");
        let floor = start.elapsed();
        assert_eq!(read.len(), old.len());
        let spec = ops::File::new(&path).content(new);
        let start = Instant::now();
        let change = ops::file(spec, Mode::Check).expect("plans");
        let took = start.elapsed();
        let diff = change.diff.unwrap_or_default();
        let shown = diff.lines().next().unwrap_or_default();
        println!(
            "  {mb:>2} MB full rewrite, planned: {:>7.1} ms (target {} ms; reading it: {:.1} ms); diff: {shown}",
            took.as_secs_f64() * 1e3,
            limit.as_millis(),
            floor.as_secs_f64() * 1e3,
        );
        if took > limit {
            println!("     over the target");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// About `size` bytes of numbered lines, each starting with `tag`.
fn lines(tag: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(format!("{tag} line {i} of a file that is rewritten\n").as_bytes());
        i += 1;
    }
    out
}
