#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what it needs, then runs format
# and lint checks and every test (unit, property, integration, end-to-end with the real
# binary, and the LogQL conformance corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
# rustfmt and clippy ship with the toolchain; install them if a minimal profile left them out.
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked --no-fail-fast
