//! A group call as an ops tool makes it, for tests that look at its output:
//! `group_demo SSH_CONFIG HOST...` says hello on every host (stderr lines
//! come back as `[host] ...`) and prints one line per host.

use chopsticks::Group;

#[chopsticks::main]
fn main() {
    let mut args = std::env::args().skip(1);
    let config = args.next().expect("usage: group_demo SSH_CONFIG HOST...");
    let hosts: Vec<String> = args.collect();
    let group = Group::new(hosts).configure(|b| b.ssh_config(&config));
    let results = group.call(chopsticks_tests::say, ("hello".into(),));
    for (host, result) in &results {
        println!("{host}: {}", if result.is_ok() { "ok" } else { "failed" });
    }
}
