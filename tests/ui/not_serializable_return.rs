use chopsticks::remote;

pub struct Report {
    pub ok: bool,
}

#[remote]
fn check() -> Report {
    Report { ok: true }
}

fn main() {
    let _ = check().ok;
}
