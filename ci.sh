#!/usr/bin/env bash
# Exactly what CI runs (the README's test command): set up the test hosts,
# then formatting, lints, tests and docs with warnings denied.
set -euo pipefail
cd "$(dirname "$0")"

bash tests/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace
