// A group call's results and a pending call must be looked at: dropping
// them unread loses each host's outcome.
#![deny(unused_must_use)]

#[chopsticks::remote]
fn ping() -> u8 {
    1
}

#[chopsticks::main]
fn main() {
    let group = chopsticks::Group::new(["web1"]);
    group.call(ping, ());
    let tunnel = chopsticks::Tunnel::local().unwrap();
    tunnel.call_async(ping, ());
}
