//! A small ops tool: a table of facts for each host on the command line, or
//! for a local tunnel when none is given.
//!
//! ```text
//! cargo run --release --example facts
//! cargo run --release --example facts -- [-F ssh_config] HOST...
//! cargo run --release --example facts -- docker:CONTAINER...
//! ```
//!
//! Hosts are reached with the system `ssh` (your `~/.ssh/config`, agent and
//! known_hosts apply), `docker:NAME` with `docker exec` into a running
//! container, all connected in parallel; nothing needs to be installed on
//! them.

use std::time::Duration;

use chopsticks::{facts, remote, Error, Tunnel, TunnelBuilder};

/// The 1-, 5- and 15-minute load averages: a custom `#[remote]` function.
#[remote]
fn loadavg() -> std::io::Result<String> {
    let text = std::fs::read_to_string("/proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

struct Row {
    hostname: String,
    ip: String,
    kernel: String,
    uptime: String,
    load: String,
    /// The facts the host does not have, and why.
    missing: Vec<String>,
}

fn facts_of(t: &Tunnel) -> chopsticks::Result<Row> {
    // Five calls in flight at once, then wait for all of them.
    let hostname = t.call_async(facts::hostname, ());
    let ip = t.call_async(facts::ip, ());
    let kernel = t.call_async(facts::kernel, ());
    let uptime = t.call_async(facts::uptime, ());
    let load = t.call_async(loadavg, ());
    let mut missing = Vec::new();
    // A fact the host does not have (its function returned an error, such
    // as no address but loopback) shows as `-`; a lost host fails the row.
    let mut cell = |name: &str, value: chopsticks::Result<String>| match value {
        Ok(value) => Ok(value),
        Err(Error::Remote { error, .. }) => {
            missing.push(format!("no {name}: {error}"));
            Ok("-".to_owned())
        }
        Err(e) => Err(e),
    };
    Ok(Row {
        hostname: cell("hostname", hostname.wait())?,
        ip: cell("IP", ip.wait().map(|ip| ip.to_string()))?,
        kernel: cell("kernel", kernel.wait())?,
        uptime: cell("uptime", uptime.wait().map(human))?,
        load: cell("load", load.wait())?,
        missing,
    })
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 86_400, s / 3_600 % 24, s / 60 % 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[chopsticks::main]
fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: facts [-F SSH_CONFIG] [HOST...]\n\
             A table of facts for each HOST, or for a local tunnel when no host is\n\
             given. HOST is reached with the system ssh and its configuration;\n\
             docker:NAME goes into the running container NAME with docker exec."
        );
        return;
    }
    let config = match args.iter().position(|a| a == "-F") {
        Some(i) if i + 1 < args.len() => {
            let path = args.remove(i + 1);
            args.remove(i);
            Some(path)
        }
        _ => None,
    };
    let connect = |host: &str| -> chopsticks::Result<Tunnel> {
        if host == "localhost" && config.is_none() {
            return Tunnel::local();
        }
        if let Some(container) = host.strip_prefix("docker:") {
            return TunnelBuilder::docker(container)
                .connect_timeout(Duration::from_secs(15))
                .connect();
        }
        let mut builder = Tunnel::builder(host).connect_timeout(Duration::from_secs(15));
        if let Some(config) = &config {
            builder = builder.ssh_config(config);
        }
        builder.connect()
    };
    let hosts = if args.is_empty() {
        vec!["localhost".to_owned()]
    } else {
        args
    };
    let rows: Vec<(String, chopsticks::Result<Row>)> = std::thread::scope(|s| {
        let jobs: Vec<_> = hosts
            .iter()
            .map(|host| (host, s.spawn(|| connect(host).and_then(|t| facts_of(&t)))))
            .collect();
        jobs.into_iter()
            .map(|(host, job)| (host.clone(), job.join().expect("a host's thread panicked")))
            .collect()
    });

    println!(
        "{:<16} {:<20} {:<16} {:<24} {:<10} LOAD",
        "HOST", "HOSTNAME", "IP", "KERNEL", "UPTIME"
    );
    let mut failed = 0;
    for (host, row) in rows {
        match row {
            Ok(r) => {
                println!(
                    "{host:<16} {:<20} {:<16} {:<24} {:<10} {}",
                    r.hostname, r.ip, r.kernel, r.uptime, r.load
                );
                for why in r.missing {
                    eprintln!("{host}: {why}");
                }
            }
            Err(e) => {
                failed += 1;
                println!("{host:<16} error: {e}");
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
