#!/usr/bin/env bash
# Everything the test suite needs, on a fresh machine: the SSH test hosts
# (tests/hosts/up.sh) and a static x86_64-unknown-linux-musl build of the
# fixture agent, for hosts whose glibc is older than this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/hosts/up.sh

musl=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "setup: adding the $musl target (a static agent for old-glibc hosts)"
    rustup target add "$musl" || {
        echo "setup: cannot add the $musl target; the old-glibc test will fail until" \
             "\`rustup target add $musl\` works" >&2
        exit 1
    }
fi
cargo build --quiet -p chopsticks-tests --bin fixture --target "$musl"
echo "setup: test hosts up, musl agent built"
