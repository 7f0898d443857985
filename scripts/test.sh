#!/usr/bin/env bash
# Runs the whole test suite: unit, component and end-to-end tests (nextest when installed),
# then the doc examples (which nextest does not run). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditlake-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
# The S3 tests run against a real S3-protocol server on loopback, started here.
eval "$(./scripts/s3-server.sh start)"
trap './scripts/s3-server.sh stop' EXIT

# Doc examples first, so the last summary printed is the whole suite's.
cargo test --doc
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast --lib --bins --tests
fi
