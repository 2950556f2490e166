#!/usr/bin/env bash
# Exactly what CI runs (the README's test command): set up the test hosts,
# then formatting, lints, tests and docs with warnings denied.
set -euo pipefail
cd "$(dirname "$0")"

bash tests/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# A hang must fail the run, not outlast it: no test run takes near this.
timeout --kill-after=30 2400 cargo test --workspace || {
    status=$?
    [ "$status" -ge 124 ] && echo "ci: cargo test did not finish within 40 minutes (status $status); the test reported as running longest above hangs" >&2
    exit "$status"
}
