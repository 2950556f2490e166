//! A hostile host: a fake agent (the `hostile` fixture, started as a
//! command tunnel) that writes what a real one never would. Whatever it
//! writes, the controller gives an error naming the host within the connect
//! or call bound, never panics or hangs, reads no frame past the frame
//! limit, and leaves no process behind.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chopsticks::{Error, TunnelBuilder};
use chopsticks_tests::add;
use chopsticks_tests::hostile::{Piece, Plan};
use proptest::prelude::*;

chopsticks::agent_test!();

const HOSTILE: &str = env!("CARGO_BIN_EXE_hostile");
const CONNECT: Duration = Duration::from_secs(10);

/// The tests here count this process's children: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn builder(args: &[&str]) -> TunnelBuilder {
    let argv = std::iter::once(HOSTILE).chain(args.iter().copied());
    TunnelBuilder::command("hostile", argv).connect_timeout(CONNECT)
}

/// This process's children still running the fake agent, or not reaped.
fn fake_agents_left() -> Vec<String> {
    chopsticks_tests::children()
        .into_iter()
        .filter(|c| c.is_zombie() || c.exe == Path::new(HOSTILE))
        .map(|c| c.to_string())
        .collect()
}

/// No fake agent outlives its tunnel by more than the close grace.
fn assert_none_left() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = fake_agents_left();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect_error(mode: &str) -> (String, Duration) {
    let started = Instant::now();
    let err = match builder(&[mode]).connect() {
        Ok(_) => panic!("{mode}: connected"),
        Err(e) => e,
    };
    let took = started.elapsed();
    assert!(took < CONNECT + Duration::from_secs(3), "{mode}: {took:?}");
    assert_eq!(err.host(), "hostile");
    assert_none_left();
    (err.to_string(), took)
}

#[test]
fn endless_random_bytes_end_the_handshake_at_the_junk_allowance() {
    let _one = serial();
    let (message, took) = connect_error("garbage");
    assert!(
        message.contains("bytes without the chopsticks preamble"),
        "{message}"
    );
    // Refused once 64 KiB were read, not at the connect timeout.
    assert!(took < CONNECT / 2, "{took:?}");
}

#[test]
fn a_4_gib_hello_is_refused_without_being_read() {
    let _one = serial();
    let (message, took) = connect_error("huge-hello");
    assert!(message.contains("its hello is not a frame"), "{message}");
    assert!(took < CONNECT / 2, "{took:?}");
}

#[test]
fn a_reply_before_the_hello_is_a_handshake_error() {
    let _one = serial();
    let (message, _) = connect_error("early-reply");
    assert!(
        message.contains("it sent a message before saying hello"),
        "{message}"
    );
}

/// The protocol-version check, live: an agent of the next version and one
/// of the first (whose hello this version cannot decode) each say which
/// side to rebuild.
#[test]
fn agents_of_another_protocol_say_which_side_to_rebuild() {
    let _one = serial();
    let (newer, _) = connect_error("newer");
    assert!(
        newer.contains("the agent is newer: rebuild this program"),
        "{newer}"
    );
    let (older, _) = connect_error("older");
    assert!(older.contains("the agent speaks protocol 1"), "{older}");
    assert!(
        older.contains("the agent is older: rebuild the agent binary"),
        "{older}"
    );
}

/// Calls `add(1, 2)` on a fake agent that answers with `plan`; checks the
/// bounds and that nothing is left behind; returns the call's result.
fn call_with(plan: &Plan, timeout: Duration) -> chopsticks::Result<i64> {
    let t = builder(&["plan", &plan.to_arg()])
        .call_timeout(timeout)
        .connect()
        .expect("the fake agent greets properly");
    let started = Instant::now();
    let result = t.call(add, (1, 2));
    let took = started.elapsed();
    assert!(
        took < timeout + Duration::from_secs(2),
        "{plan:?}: {took:?}"
    );
    let started = Instant::now();
    drop(t);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closing took {took:?}");
    assert_none_left();
    if let Err(e) = &result {
        assert_eq!(e.host(), "hostile");
    }
    result
}

fn plan(pieces: Vec<Piece>, exit: bool) -> Plan {
    Plan { pieces, exit }
}

#[test]
fn a_4_gib_frame_after_the_hello_fails_the_call_at_once() {
    let _one = serial();
    let started = Instant::now();
    let err = call_with(
        &plan(vec![Piece::Announce(u32::MAX)], false),
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn replies_to_unknown_calls_are_dropped_and_the_right_one_arrives() {
    let _one = serial();
    let pieces = vec![
        Piece::Reply {
            other: Some(999),
            result: Ok("4".into()),
        },
        Piece::Data {
            other: Some(998),
            bytes: vec![1; 10],
        },
        Piece::Credit {
            other: Some(997),
            bytes: 1 << 40,
        },
        Piece::Reply {
            other: None,
            result: Ok("3".into()),
        },
    ];
    let value = call_with(&plan(pieces, false), Duration::from_secs(30)).unwrap();
    assert_eq!(value, 3);
}

#[test]
fn bad_json_bad_postcard_and_truncation_each_fail_the_call() {
    let _one = serial();
    let timeout = Duration::from_secs(30);
    let bad_json = vec![Piece::Reply {
        other: None,
        result: Ok("{not json".into()),
    }];
    let err = call_with(&plan(bad_json, false), timeout).unwrap_err();
    assert!(
        matches!(err, Error::Decode { .. })
            && err
                .to_string()
                .contains("cannot decode `chopsticks_tests::fixtures::add`"),
        "{err:?}"
    );
    let bad_postcard = vec![Piece::Frame(vec![0xff; 7])];
    let err = call_with(&plan(bad_postcard, false), timeout).unwrap_err();
    assert!(
        err.to_string().contains("undecodable reply from the agent"),
        "{err}"
    );
    let truncated = vec![Piece::Bytes(vec![20, 0, 0, 0, 1, 2, 3])];
    let err = call_with(&plan(truncated, true), timeout).unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    let second_hello = vec![Piece::Hello];
    let err = call_with(&plan(second_hello, false), timeout).unwrap_err();
    assert!(err.to_string().contains("said hello twice"), "{err}");
}

fn piece() -> impl Strategy<Value = Piece> {
    let other = proptest::option::of(any::<u64>());
    let text = prop_oneof![
        ".{0,30}",
        Just("\u{1b}]0;owned\u{7}\u{1b}[2J".to_owned()),
        Just("3".to_owned()),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Bytes),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Frame),
        prop_oneof![
            Just(u32::MAX),
            (chopsticks_agent::wire::MAX_FRAME as u32 - 10..=u32::MAX)
        ]
        .prop_map(Piece::Announce),
        (
            other.clone(),
            proptest::result::maybe_ok(text.clone(), text.clone())
        )
            .prop_map(|(other, result)| Piece::Reply { other, result }),
        (0..7u8, text.clone(), text).prop_map(|(level, target, message)| Piece::Log {
            level,
            target,
            message
        }),
        (other.clone(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(other, bytes)| Piece::Data { other, bytes }),
        (other, any::<u64>()).prop_map(|(other, bytes)| Piece::Credit { other, bytes }),
        Just(Piece::Hello),
    ]
}

/// What a value reply in `plan` makes the call return, if it is the first
/// word on the call that nothing before it spoils.
fn answered(plan: &Plan) -> Option<i64> {
    match plan.pieces.first()? {
        Piece::Reply {
            other: None,
            result: Ok(json),
        } => serde_json::from_str(json).ok(),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any mix of frames, good and bad, known and unknown request IDs,
    /// huge lengths and truncations: the call ends within its timeout with
    /// a value a reply carried, or with an error naming the host; the
    /// tunnel closes within its bound; no process is left.
    #[test]
    fn whatever_a_host_answers_the_call_ends_within_its_bound(
        pieces in proptest::collection::vec(piece(), 0..6),
        exit in any::<bool>(),
    ) {
        let _one = serial();
        let plan = Plan { pieces, exit };
        let result = call_with(&plan, Duration::from_millis(400));
        if let Some(value) = answered(&plan) {
            prop_assert_eq!(result.as_ref().ok(), Some(&value), "{:?}", result);
        }
        if let Ok(value) = result {
            let carried = plan.pieces.iter().any(|p| matches!(
                p,
                Piece::Reply { other: None, result: Ok(json) }
                    if serde_json::from_str::<i64>(json).ok() == Some(value)
            ));
            prop_assert!(carried, "{} came from nowhere", value);
        }
    }
}
