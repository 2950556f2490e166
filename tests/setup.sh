#!/usr/bin/env bash
# Everything the test suite needs, on a fresh machine: the SSH test hosts
# (tests/hosts/up.sh) and a fixture agent that runs on hosts whose glibc is
# older than this machine's, at target/testhosts/agents/fixture:
# - a static x86_64-unknown-linux-musl build (rustup target add), or, when
#   that target cannot be had,
# - a glibc build linked against glibc 2.28 symbols with cargo-zigbuild and
#   zig from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/hosts/up.sh

state=${CHOPSTICKS_TESTHOSTS_DIR:-$PWD/target/testhosts}
agents=$state/agents
mkdir -p "$agents"
musl=x86_64-unknown-linux-musl

have_musl() {
    [ -z "${CHOPSTICKS_SETUP_NO_MUSL:-}" ] || return 1
    rustup target list --installed 2>/dev/null | grep -qx "$musl" && return 0
    echo "setup: adding the $musl target (a static agent for old-glibc hosts)"
    rustup target add "$musl"
}

if have_musl; then
    cargo build --quiet -p chopsticks-tests --bin fixture --target "$musl"
    cp -f "target/$musl/debug/fixture" "$agents/fixture"
    echo "setup: test hosts up, musl fixture agent built"
else
    echo "setup: no $musl target; building the fixture against glibc 2.28 with cargo-zigbuild"
    venv=$state/zig-venv
    if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet 'cargo-zigbuild>=0.19' ziglang
    fi
    PATH="$venv/bin:$PATH" cargo zigbuild --quiet -p chopsticks-tests --bin fixture \
        --target x86_64-unknown-linux-gnu.2.28
    cp -f target/x86_64-unknown-linux-gnu/debug/fixture "$agents/fixture"
    echo "setup: test hosts up, glibc-2.28 fixture agent built"
fi
