//! A program that forgot to enter agent mode: its `main` runs as usual.

fn main() {
    println!("doing the main job instead of serving");
    if let Err(e) = chopsticks::Tunnel::local() {
        eprintln!("{e}");
        std::process::exit(3);
    }
}
