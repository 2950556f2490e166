//! Property tests of the controller's readers of what a host sends (the
//! entry points the fuzz targets of `fuzz/` drive): however reads cut it
//! and whatever it holds, a greeting, a frame stream or a frame is read
//! alike, refused, or kept within its bound, never a panic. Here, not in
//! the core crate, so that its examples build without proptest.
//!
//! The same checks as the fuzz targets at a fixed budget per test run, over
//! inputs built to reach past the first byte: greetings of junk, markers
//! and hello frames; streams of frames, huge lengths and truncations;
//! replies of every kind.

use chopsticks::__fuzz::*;
use chopsticks_agent::wire::{self, Failure, Hello, Response};
use proptest::prelude::*;

fn hello(protocol: u32, pid: u32) -> Vec<u8> {
    wire::encode_frame(&Response::Hello(Hello {
        protocol,
        version: "0.1.0".into(),
        fingerprint: 7,
        functions: vec![1, 2],
        exe_sha256: String::new(),
        pid,
    }))
    .unwrap()
}

/// One piece of what an agent writes before its hello, or of it.
fn greeting_piece() -> impl Strategy<Value = Vec<u8>> {
    let line = |prefix: &'static str| {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(move |mut tail| {
            tail.retain(|b| *b != b'\n');
            let mut line = prefix.as_bytes().to_vec();
            line.extend(tail);
            line.push(b'\n');
            line
        })
    };
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        line(""),
        line("chopsticks-upload n0 "),
        line("chopsticks-error n0 "),
        line("chopsticks-error n1 "),
        Just(b"chopsticks-agent n0\n".to_vec()),
        Just(b"chopsticks-agent n0\r\r\n".to_vec()),
        Just(b"chopsticks-agent n1\n".to_vec()),
        Just(b"chopsticks-agent n0".to_vec()),
        Just([&b"chopsticks-agent n0"[..], &[b'\r'; 5000], b"\n"].concat()),
        (0..MAX_JUNK + 2000).prop_map(|n| {
            let mut junk = vec![b'x'; n];
            junk.push(b'\n');
            junk
        }),
        (any::<u32>(), 0..2u32).prop_map(|(pid, old)| hello(wire::PROTOCOL_VERSION - old, pid)),
        (wire::MAX_FRAME as u32 + 1..=u32::MAX).prop_map(|len| len.to_le_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|frame| {
            let mut out = (frame.len() as u32).to_le_bytes().to_vec();
            out.extend(frame);
            out
        }),
    ]
}

/// A stream of frames and the ways it can break.
fn stream_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(|frame| {
            let mut out = (frame.len() as u32).to_le_bytes().to_vec();
            out.extend(frame);
            out
        }),
        1 => (1usize..200_000).prop_map(|len| {
            let mut out = (len as u32).to_le_bytes().to_vec();
            out.resize(4 + len, 0xab);
            out
        }),
        1 => (wire::MAX_FRAME as u32 + 1..=u32::MAX).prop_map(|len| len.to_le_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        Just("\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}31m\u{7f}".to_owned()),
    ]
}

fn reply_frame() -> impl Strategy<Value = Vec<u8>> {
    let response = prop_oneof![
        (any::<u64>(), text()).prop_map(|(req, json)| (Some((req, Ok(json))), None)),
        (
            any::<u64>(),
            text(),
            proptest::collection::vec(text(), 0..3)
        )
            .prop_map(|(req, message, chain)| (
                Some((req, Err(Failure::Error { message, chain }))),
                None
            )),
        (any::<u8>(), text(), text())
            .prop_map(|(level, target, message)| (None, Some((level, target, message)))),
    ];
    prop_oneof![
        response.prop_map(|(reply, log)| {
            let message = match (reply, log) {
                (Some((req, result)), _) => Response::Reply { req, result },
                (None, Some((level, target, message))) => {
                    return postcard::to_allocvec(&Response::Log {
                        level,
                        target,
                        message,
                    })
                    .unwrap();
                }
                (None, None) => unreachable!(),
            };
            postcard::to_allocvec(&message).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn greetings_end_alike_however_reads_cut_them(
        cut in any::<u8>(),
        pieces in proptest::collection::vec(greeting_piece(), 0..12),
    ) {
        let mut data = vec![cut];
        data.extend(pieces.concat());
        greeting(&data);
    }

    #[test]
    fn junk_within_the_allowance_never_hides_the_hello(
        cut in any::<u8>(),
        lines in proptest::collection::vec("[^\n]{0,200}", 0..50),
        short in 0..64usize,
        pid in any::<u32>(),
    ) {
        let mut junk = Vec::new();
        for line in lines.iter().filter(|l| !l.starts_with("chopsticks-")) {
            junk.extend(line.as_bytes());
            junk.push(b'\n');
        }
        // Up to the allowance, but for `short` bytes.
        let pad = MAX_JUNK.saturating_sub(junk.len() + short + 1);
        junk.extend(std::iter::repeat_n(b'x', pad));
        junk.push(b'\n');
        let mut data = vec![cut];
        data.extend(junk);
        data.extend(b"chopsticks-agent n0\n");
        data.extend(hello(wire::PROTOCOL_VERSION, pid));
        prop_assert_eq!(greeting(&data), format!("hello from {pid}"));
    }

    #[test]
    fn streams_are_cut_into_their_frames_or_refused(
        pieces in proptest::collection::vec(stream_piece(), 0..10),
    ) {
        let stream = pieces.concat();
        let _ = frames(&stream);
    }

    #[test]
    fn any_frame_decodes_or_is_refused_and_host_text_is_printable(
        frame in reply_frame(),
    ) {
        response(&frame);
    }

    #[test]
    fn random_bytes_never_panic_a_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        greeting(&bytes);
        let _ = frames(&bytes);
        response(&bytes);
        let _ = strip(&bytes);
    }
}
