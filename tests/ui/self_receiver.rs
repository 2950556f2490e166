use chopsticks::remote;

struct Server {
    name: String,
}

impl Server {
    #[remote]
    fn name(&self) -> String {
        self.name.clone()
    }
}

fn main() {
    let server = Server {
        name: "web1".into(),
    };
    let _ = server.name();
}
