// A `#[remote]` function's name is a unit struct (the handle), so in its
// scope `let user = ...` is a pattern that matches that struct, not a new
// binding: "`user` is interpreted as a unit struct" (a parameter named
// `user` gets the same error). Rustc reports it as mismatched types in a
// pattern, where no attribute of ours can add a note
// (`#[diagnostic::on_unimplemented]` speaks only for unmet trait bounds), so
// the note is here and in the `chopsticks` docs ("The handle's costs"):
// keep remote functions in a module of their own and call them by path,
//
//     mod tasks {
//         #[chopsticks::remote]
//         pub fn user(name: String) -> String { name }
//     }
//     let user = tasks::user("root".to_owned()); // compiles
//
// and where a `fn` value is needed, write `*tasks::user`.

use chopsticks::remote;

#[remote]
fn user(name: String) -> String {
    name
}

fn main() {
    let user = user("root".to_owned());
}
