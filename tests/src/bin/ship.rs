//! Connects once, as a tool run from a shell does, and says what shipping
//! the agent cost: `ship SSH_CONFIG HOST AGENT [--debug-info]` prints
//! `uploaded=<bool> hashed=<n> sha256=<hex> self=<hex> sections=<a,b,...>`:
//! whether the agent was uploaded, how many times this process hashed an
//! executable, the hash the handshake reported, and the agent's own hash and
//! ELF sections as the host has the file.

use chopsticks::Tunnel;
use chopsticks_tests::exe_sections;

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, host, agent, rest @ ..] = &args[..] else {
        eprintln!("usage: ship SSH_CONFIG HOST AGENT [--debug-info]");
        std::process::exit(2);
    };
    let t = Tunnel::builder(host)
        .ssh_config(config)
        .agent_binary(agent)
        .ship_debug_info(rest.iter().any(|a| a == "--debug-info"))
        .connect()?;
    let (own, sections) = t.call(exe_sections, ())?;
    println!(
        "uploaded={} hashed={} sha256={} self={own} sections={}",
        t.uploaded(),
        chopsticks::__private::images_hashed(),
        t.agent_sha256().unwrap_or("-"),
        sections.join(",")
    );
    Ok(())
}
