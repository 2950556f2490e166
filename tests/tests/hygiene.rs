//! The code `#[remote]` generates is hygienic: it compiles in a crate with no
//! prelude, where every name must be spelled as an absolute path, and the
//! functions still work over a real tunnel.

#![no_implicit_prelude]

::chopsticks::agent_test!();

/// No arguments.
#[::chopsticks::remote]
fn answer() -> u32 {
    42
}

/// Several arguments.
#[::chopsticks::remote]
fn join3(a: ::std::string::String, b: u8, c: ::std::vec::Vec<i64>) -> ::std::string::String {
    ::std::format!("{a}-{b}-{c:?}")
}

/// An `io::Result`, spelled in full.
#[::chopsticks::remote]
fn read_len(path: ::std::string::String) -> ::std::io::Result<u64> {
    ::std::result::Result::Ok(::std::fs::metadata(path)?.len())
}

/// A `core::result::Result` with a `String` error.
#[::chopsticks::remote]
fn halve(n: u32) -> ::core::result::Result<u32, ::std::string::String> {
    if n.is_multiple_of(2) {
        ::core::result::Result::Ok(n / 2)
    } else {
        ::core::result::Result::Err(::std::format!("{n} is odd"))
    }
}

/// Unit return.
#[::chopsticks::remote]
fn nothing() {}

/// Unit return, spelled out, with an argument.
#[::chopsticks::remote]
fn discard(value: ::std::option::Option<bool>) -> () {
    let _ = value;
}

/// Arguments named like the bindings the generated code uses.
#[::chopsticks::remote]
fn sum4(args: u8, f: u8, value: u8, error: u8) -> ::std::io::Result<u8> {
    ::std::result::Result::Ok(args + f + value + error)
}

#[test]
fn remote_functions_work_without_a_prelude() {
    let t = ::chopsticks::Tunnel::local().expect("start a local agent");
    ::std::assert_eq!(t.call(answer, ()).unwrap(), 42);
    ::std::assert_eq!(
        t.call(
            join3,
            (::std::borrow::ToOwned::to_owned("x"), 7, ::std::vec![1, -2]),
        )
        .unwrap(),
        "x-7-[1, -2]"
    );
    ::std::assert_eq!(
        t.call(read_len, (::std::borrow::ToOwned::to_owned("/dev/null"),))
            .unwrap(),
        0
    );
    let err = t
        .call(
            read_len,
            (::std::borrow::ToOwned::to_owned("/definitely/missing"),),
        )
        .unwrap_err();
    ::std::assert!(
        ::std::matches!(err, ::chopsticks::Error::Remote { .. }),
        "{err:?}"
    );
    ::std::assert_eq!(t.call(halve, (8,)).unwrap(), 4);
    let err = t.call(halve, (7,)).unwrap_err();
    ::std::assert!(
        ::std::string::ToString::to_string(&err).ends_with("failed: 7 is odd"),
        "{err}"
    );
    t.call(nothing, ()).unwrap();
    t.call(discard, (::std::option::Option::Some(true),))
        .unwrap();
    ::std::assert_eq!(t.call(sum4, (1, 2, 3, 4)).unwrap(), 10);
}

#[test]
fn handles_still_call_locally() {
    ::std::assert_eq!(answer(), 42);
    ::std::assert_eq!(
        halve(3),
        ::core::result::Result::Err(::std::borrow::ToOwned::to_owned("3 is odd"))
    );
    ::std::assert_eq!(::std::format!("{answer:?}"), "hygiene::answer");
}

/// Handles named like the bindings the generated code used to use.
mod clashing_names {
    #[::chopsticks::remote]
    pub fn args() {}

    #[::chopsticks::remote]
    pub fn f() {}

    #[::chopsticks::remote]
    pub fn value() -> ::std::io::Result<u8> {
        ::std::result::Result::Ok(1)
    }

    #[::chopsticks::remote]
    pub fn error() -> ::std::io::Result<u8> {
        ::std::result::Result::Ok(2)
    }
}

#[test]
fn handles_may_take_any_name() {
    let t = ::chopsticks::Tunnel::local().expect("start a local agent");
    t.call(clashing_names::args, ()).unwrap();
    t.call(clashing_names::f, ()).unwrap();
    ::std::assert_eq!(t.call(clashing_names::value, ()).unwrap(), 1);
    ::std::assert_eq!(t.call(clashing_names::error, ()).unwrap(), 2);
}
