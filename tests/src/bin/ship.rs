//! Connects once, as a tool run from a shell does, and says what shipping
//! the agent cost: `ship SSH_CONFIG HOST AGENT [--debug-info] [--docker]`
//! prints `uploaded=<bool> hashed=<n> sha256=<hex> self=<hex>
//! sections=<a,b,...> form=<raw|gz|->`: whether the agent was uploaded, how
//! many times this process hashed an executable, the hash the handshake
//! reported, the agent's own hash and ELF sections as the host has the
//! file, and the form it was sent in. With `--docker`, HOST is a container
//! reached by a command tunnel (`docker exec -i HOST`).

use std::sync::Mutex;

use chopsticks::{Tunnel, TunnelBuilder};
use chopsticks_tests::exe_sections;

/// The form of the last upload, from the debug log line
/// "chopsticks: uploading PATH (N bytes, M sent, FORM)".
struct Form(Mutex<Option<String>>);

static FORM: Form = Form(Mutex::new(None));

impl log::Log for Form {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("chopsticks")
    }
    fn log(&self, r: &log::Record<'_>) {
        let text = r.args().to_string();
        if let Some(rest) = text.strip_prefix("chopsticks: uploading ") {
            let form = rest
                .rsplit_once(", ")
                .and_then(|(_, f)| f.strip_suffix(')'));
            *self.0.lock().unwrap() = form.map(str::to_owned);
        }
    }
    fn flush(&self) {}
}

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, host, agent, rest @ ..] = &args[..] else {
        eprintln!("usage: ship SSH_CONFIG HOST AGENT [--debug-info]");
        std::process::exit(2);
    };
    let _ = log::set_logger(&FORM);
    log::set_max_level(log::LevelFilter::Debug);
    let builder = if rest.iter().any(|a| a == "--docker") {
        TunnelBuilder::command(host, ["docker", "exec", "-i", host.as_str()])
    } else {
        Tunnel::builder(host).ssh_config(config)
    };
    let t = builder
        .agent_binary(agent)
        .ship_debug_info(rest.iter().any(|a| a == "--debug-info"))
        .connect()?;
    let (own, sections) = t.call(exe_sections, ())?;
    println!(
        "uploaded={} hashed={} sha256={} self={own} sections={} form={}",
        t.uploaded(),
        chopsticks::__private::images_hashed(),
        t.agent_sha256().unwrap_or("-"),
        sections.join(","),
        FORM.0.lock().unwrap().as_deref().unwrap_or("-")
    );
    Ok(())
}
