//! The names both sides agree on outside the frames: environment variables,
//! the agent's command line, the bootstrap's marker lines and the wire-ID
//! hash. The frames themselves are in [`wire`](crate::wire). Everything here
//! is documented in `docs/PROTOCOL.md` and `docs/BOOTSTRAP.md`.

/// Set by the controller to the session nonce: this process is an agent.
pub const ENV_AGENT: &str = "CHOPSTICKS_AGENT";
/// Set by the bootstrap to the SHA-256 this executable should have.
pub const ENV_AGENT_SHA256: &str = "CHOPSTICKS_AGENT_SHA256";
/// Set by the controller to its `log::max_level()` (0 = off ... 5 = trace),
/// so the agent does not format records nobody wants.
pub const ENV_LOG_LEVEL: &str = "CHOPSTICKS_LOG_LEVEL";
/// Set by the controller to how deep the agent sits: 1 for an agent that
/// a program started, 2 for one that agent's functions started ...
pub const ENV_DEPTH: &str = "CHOPSTICKS_DEPTH";
/// The deepest an agent may sit. A program reads it from its environment
/// (unset: [`DEFAULT_MAX_DEPTH`]); the controller passes its limit on to
/// the agents it starts.
pub const ENV_MAX_DEPTH: &str = "CHOPSTICKS_MAX_DEPTH";
/// The deepest an agent may sit when nothing says otherwise: an agent's
/// functions may start agents, whose functions may not (as Python
/// chopsticks).
pub const DEFAULT_MAX_DEPTH: u32 = 2;
/// Set by the controller to how many calls the agent may run on threads
/// of their own at once (unset: [`DEFAULT_MAX_CALL_THREADS`]).
pub const ENV_MAX_CALL_THREADS: &str = "CHOPSTICKS_MAX_CALL_THREADS";
/// How many calls an agent runs on threads of their own at once, unless
/// its controller says otherwise: past it, requests wait for a call to end.
pub const DEFAULT_MAX_CALL_THREADS: usize = 1024;
/// Set by the controller to the name of the program it runs as (the file
/// name of its executable, reduced to `[A-Za-z0-9._+-]`): what the agent,
/// whose own file is named by its hash, calls its tool (state it keeps on
/// the host for that tool, such as pending handlers, is kept by this name,
/// so a new build finds what the old one left).
pub const ENV_TOOL: &str = "CHOPSTICKS_TOOL";
/// Set by the controller to `1` for an agent that must change nothing
/// (`TunnelBuilder::check_only`): its operations run in check mode
/// whatever mode they are given, it refuses to receive files, and agents
/// it starts are check-only too.
pub const ENV_CHECK_ONLY: &str = "CHOPSTICKS_CHECK_ONLY";
/// Every variable the controller sets for an agent; the agent removes them
/// all before any remote function runs.
pub const AGENT_ENV: [&str; 8] = [
    ENV_AGENT,
    ENV_AGENT_SHA256,
    ENV_LOG_LEVEL,
    ENV_DEPTH,
    ENV_MAX_DEPTH,
    ENV_MAX_CALL_THREADS,
    ENV_TOOL,
    ENV_CHECK_ONLY,
];

/// Set (to `1`) in the environment of a janitor: a copy of the program
/// that removes the temporary files of the process that started it when
/// that process dies (see `janitor.rs`).
pub const ENV_JANITOR: &str = "CHOPSTICKS_JANITOR";

/// Set in the environment of a copy of the program that answers ssh's
/// password prompt (`SSH_ASKPASS`): the path of the controller's socket that
/// gives the answer (see `askpass.rs`).
pub const ENV_ASKPASS: &str = "CHOPSTICKS_ASKPASS";
/// ssh's prompt, passed on to the answering copy (ssh gives it as the
/// askpass program's argument).
pub const ENV_ASKPASS_PROMPT: &str = "CHOPSTICKS_ASKPASS_PROMPT";

/// What sudo prints when it asks for a password in the bootstrap (`sudo -S
/// -p`); the controller answers it from its password source.
pub const SUDO_PROMPT: &str = "chopsticks-sudo-password:";

/// The name of the ignored test that `chopsticks::agent_test!()` defines.
pub const AGENT_ENTRY_FN: &str = "__chopsticks_agent_entry";
/// The agent's arguments: a libtest filter that selects [`AGENT_ENTRY_FN`]
/// in a test binary. A binary whose `main` enters agent mode first never
/// looks at them.
pub const AGENT_ENTRY_ARGS: [&str; 5] = [
    AGENT_ENTRY_FN,
    "--include-ignored",
    "--nocapture",
    "--test-threads=1",
    "-q",
];

/// The first line the agent writes, followed by a space and the nonce the
/// controller gave it. Lines before it (login banners) are skipped.
pub const PREAMBLE: &str = "chopsticks-agent";
/// `chopsticks-upload <nonce> <uname -s> <uname -m>`: the bootstrap asks for
/// the agent binary.
pub const UPLOAD_MARKER: &str = "chopsticks-upload";
/// `chopsticks-error <nonce> <text>`: the bootstrap failed; `<text>` says why.
pub const ERROR_MARKER: &str = "chopsticks-error";

/// FNV-1a, 64 bits. Computed at compile time for wire IDs.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The wire ID of a function from its module path, name and signature.
pub const fn wire_id(path_and_signature: &str) -> u64 {
    fnv1a64(path_and_signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_id_is_stable() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(wire_id("m::f() -> ()"), wire_id("m::g() -> ()"));
    }

    #[test]
    fn the_markers_are_distinct_words() {
        let words = [PREAMBLE, UPLOAD_MARKER, ERROR_MARKER];
        for (i, a) in words.iter().enumerate() {
            assert!(!a.contains(char::is_whitespace));
            for b in &words[i + 1..] {
                assert!(!a.starts_with(b) && !b.starts_with(a), "{a} {b}");
            }
        }
    }
}
