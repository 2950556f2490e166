//! Selecting and resolving a big inventory, as a kit tool does before its
//! first connection: `cargo bench -p chopsticks-cli --bench selection`.
//! 100,000 hosts in 40 groups (30 groups of hosts under 10 parents, and
//! variables at every level), read from an Ansible INI file, selected with
//! `all` and with `g*:&prod:!g03`, each host's settings and variables
//! resolved. Target: within 1 s (release). Resolving was quadratic (each
//! host walked every group): 10,000 hosts took 9 s, 100,000 a quarter of
//! an hour. Then shapes that were quadratic in groups or terms: a chain of
//! 8,000 nested groups, 50,000 groups under `all`, a 50,000-line `@FILE`.

use std::fmt::Write as _;
use std::time::Instant;

use chopsticks_cli::{Fleet, Inventory};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: Fleet,
}

const HOSTS: usize = 100_000;
const LEAVES: usize = 30;
const PARENTS: usize = 10;

fn main() {
    let dir = std::env::temp_dir().join(format!("cs-selection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join("hosts");
    std::fs::write(&path, inventory()).expect("writes the inventory");
    println!(
        "selection bench: {HOSTS} hosts in {} groups",
        LEAVES + PARENTS
    );
    for limit in [None, Some("g*:&prod:!g03")] {
        let mut args = vec![
            "tool".to_owned(),
            "-i".to_owned(),
            path.display().to_string(),
        ];
        if let Some(limit) = limit {
            args.extend(["-l".to_owned(), limit.to_owned()]);
        }
        let cli = Cli::parse_from(&args);
        let start = Instant::now();
        let selection = cli.fleet.selection().expect("selects");
        let took = start.elapsed();
        println!(
            "  {:<16} {:>6} hosts read, selected and resolved in {:>7.1} ms (target 1000 ms)",
            limit.unwrap_or("all"),
            selection.hosts().len(),
            took.as_secs_f64() * 1e3
        );
    }
    // Where it goes.
    let start = Instant::now();
    let inventory = Inventory::load(&path).expect("reads");
    let read = start.elapsed();
    let start = Instant::now();
    let names = chopsticks_cli::pattern::select(&inventory, "all").expect("selects");
    let select = start.elapsed();
    let start = Instant::now();
    let resolved = inventory
        .resolve_all(&names)
        .expect("the bench inventory is valid");
    let resolve = start.elapsed();
    assert_eq!(resolved.len(), HOSTS);
    println!(
        "  phases: read {:.1} ms, select {:.1} ms, resolve {:.1} ms",
        read.as_secs_f64() * 1e3,
        select.as_secs_f64() * 1e3,
        resolve.as_secs_f64() * 1e3
    );
    shapes(&dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Shapes that were quadratic: a chain of groups each inside the next, many
/// groups under `all`, and an `@FILE` of many `!host` lines.
fn shapes(dir: &std::path::Path) {
    const CHAIN: usize = 8_000;
    const WIDE: usize = 50_000;
    let mut chain = String::new();
    for g in 0..CHAIN {
        let _ = writeln!(chain, "[c{g}]\nh{g}");
        if g > 0 {
            let _ = writeln!(chain, "[c{g}:children]\nc{}", g - 1);
        }
    }
    let mut wide = String::from("[all:children]\n");
    for g in 0..WIDE {
        let _ = writeln!(wide, "w{g}");
    }
    for g in 0..WIDE {
        let _ = writeln!(wide, "[w{g}]\nh{g}\nk{g}");
    }
    let excluded: String = (0..WIDE).map(|h| format!("!h{h}\n")).collect();
    let list = dir.join("excluded");
    std::fs::write(&list, excluded).expect("writes the host list");
    let at_list = format!("@{}", list.display());
    for (name, text, limit) in [
        ("a chain of 8,000 groups", chain, None),
        ("50,000 groups under all", wide.clone(), None),
        (
            "50,000 `!host` lines in @FILE",
            wide,
            Some(at_list.as_str()),
        ),
    ] {
        let path = dir.join("shape");
        std::fs::write(&path, text).expect("writes the inventory");
        let mut args = vec![
            "tool".to_owned(),
            "-i".to_owned(),
            path.display().to_string(),
        ];
        if let Some(limit) = limit {
            args.extend(["-l".to_owned(), format!("all:{limit}")]);
        }
        let cli = Cli::parse_from(&args);
        let start = Instant::now();
        let selected = cli.fleet.selection().map(|s| s.hosts().len());
        println!(
            "  {name:<30} {selected:?} hosts in {:>7.1} ms (target 1000 ms)",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// An INI inventory: hosts spread over the leaf groups, leaves under
/// parents, every fifth parent in `prod`, variables at each level.
fn inventory() -> String {
    let mut text = String::new();
    for leaf in 0..LEAVES {
        let _ = writeln!(text, "[g{leaf:02}]");
        for h in (leaf..HOSTS).step_by(LEAVES) {
            let _ = writeln!(
                text,
                "host{h:06} ansible_host=10.{}.{}.{} slot={h}",
                h >> 16,
                (h >> 8) & 255,
                h & 255
            );
        }
        let _ = writeln!(text, "[g{leaf:02}:vars]\nleaf={leaf}\n");
    }
    for parent in 0..PARENTS {
        let _ = writeln!(text, "[p{parent}:children]");
        for leaf in (parent..LEAVES).step_by(PARENTS) {
            let _ = writeln!(text, "g{leaf:02}");
        }
        let _ = writeln!(text, "[p{parent}:vars]\nparent={parent}\n");
    }
    let _ = writeln!(text, "[prod:children]");
    for parent in (0..PARENTS).step_by(5) {
        let _ = writeln!(text, "p{parent}");
    }
    text
}
