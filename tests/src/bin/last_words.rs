//! A tool whose host writes stderr lines just before its last reply, and
//! which exits right after closing the tunnel: every line must be on this
//! program's stderr by then. `last_words [SSH_CONFIG HOST]` (a local
//! tunnel without arguments).

use chopsticks_tests::{say, shout};

#[chopsticks::main]
fn main() -> chopsticks::Result<()> {
    let t = chopsticks_tests::tunnel_from_args()?;
    for i in 0..20 {
        t.call(say, (format!("last words {i}"),))?;
    }
    // A burst just before the last reply: much of it is still in the pipe
    // when the reply arrives.
    t.call(shout, (3000,))?;
    t.close();
    println!("ok");
    std::process::exit(0)
}
