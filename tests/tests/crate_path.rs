//! `#[remote(crate = ...)]`: the generated code names chopsticks through the
//! given path, so it works when the crate is renamed.

extern crate chopsticks as cs;

cs::agent_test!();

/// Path form: `crate = cs`.
#[cs::remote(crate = cs)]
fn double(x: i64) -> i64 {
    x * 2
}

/// String form: `crate = "cs"`.
#[cs::remote(crate = "cs")]
fn greet(name: String) -> String {
    format!("hello {name}")
}

/// A `Result` return and a second argument with the path form.
#[cs::remote(crate = ::cs, fallible)]
fn divide(a: u32, b: u32) -> Result<u32, String> {
    a.checked_div(b)
        .ok_or_else(|| "division by zero".to_string())
}

mod nested {
    /// A `use` alias inside a module, as a relative path.
    use cs as renamed;

    #[renamed::remote(crate = renamed)]
    pub fn triple(x: i64) -> i64 {
        x * 3
    }
}

/// A framework that re-exports chopsticks from one of its modules.
mod framework {
    pub mod rpc {
        pub use cs::*;
    }

    pub mod tasks {
        #[crate::framework::rpc::remote(crate = crate::framework::rpc)]
        pub fn negate(x: i64) -> i64 {
            -x
        }
    }
}

fn assert_remote<F: cs::RemoteFn>(_: F) -> &'static str {
    F::NAME
}

#[test]
fn a_renamed_crate_works_over_a_tunnel() {
    let t = cs::Tunnel::local().expect("start a local agent");
    assert_eq!(t.call(double, (21,)).unwrap(), 42);
    assert_eq!(t.call(greet, ("web1".into(),)).unwrap(), "hello web1");
    assert_eq!(t.call(divide, (9, 3)).unwrap(), 3);
    let err = t.call(divide, (1, 0)).unwrap_err();
    assert!(matches!(err, cs::Error::Remote { .. }), "{err:?}");
    assert!(err.to_string().ends_with("division by zero"), "{err}");
    assert_eq!(t.call(nested::triple, (5,)).unwrap(), 15);
    assert_eq!(t.call(framework::tasks::negate, (5,)).unwrap(), -5);
}

#[test]
fn names_do_not_depend_on_the_crate_path() {
    assert_eq!(assert_remote(double), "crate_path::double");
    assert_eq!(assert_remote(greet), "crate_path::greet");
    assert_eq!(assert_remote(nested::triple), "crate_path::nested::triple");
    assert_eq!(
        assert_remote(framework::tasks::negate),
        "crate_path::framework::tasks::negate"
    );
}
