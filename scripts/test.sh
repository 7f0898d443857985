#!/usr/bin/env bash
# Runs the whole test suite: unit, component and end-to-end tests (nextest when installed),
# then the doc examples (which nextest does not run). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditlake-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
# The HTML report's browser test runs Debian's Chromium, headless.
if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian package) for the report's browser test" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; }
fi
# `serve` is tested with psql, a real PostgreSQL client, and TLS certificates made by openssl.
if ! command -v psql >/dev/null || ! command -v openssl >/dev/null; then
  echo "installing postgresql-client and openssl (Debian packages) for the serve tests" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq postgresql-client openssl >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql-client openssl >/dev/null; }
fi
# Python peers (moto's S3 server, the deltalake reader, the OCSF schema compiler) live in a
# private venv.
venv="${AUDITLAKE_VENV:-/var/tmp/auditlake-venv}"
if ! "$venv/bin/python" -c 'import moto, deltalake, pyarrow, ocsf.compile, psycopg' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/test-requirements.txt
fi
export AUDITLAKE_VENV="$venv" AUDITLAKE_TEST_PYTHON="$venv/bin/python"
# The S3 tests run against a real S3-protocol server on loopback, started here.
eval "$(./scripts/s3-server.sh start)"
# The Azure tests run against Azurite (npm), started here; it needs Node.js and npm.
if ! command -v npm >/dev/null; then
  echo "installing npm (Debian package) for the Azure Blob Storage emulator" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null; }
fi
eval "$(./scripts/store-emulators.sh start)"
trap './scripts/s3-server.sh stop; ./scripts/store-emulators.sh stop' EXIT

# The shared target directory keeps every test binary it ever linked (about 750 MB each, and a new
# set for each clone path CI builds from). Keep those linked within ten minutes of the newest of
# the same name (one build links the `auditlake` lib tests, bin tests and binary together).
deps="$CARGO_TARGET_DIR/debug/deps"
if [ -d "$deps" ]; then
  find "$deps" -maxdepth 1 -type f -executable -regex '.*-[0-9a-f]+$' -printf '%T@ %p\n' \
    | sort -rn \
    | awk '{ name = $2; sub(/-[0-9a-f]+$/, "", name)
             if (!(name in newest)) newest[name] = $1
             else if (newest[name] - $1 > 600) print $2 }' \
    | xargs -r rm -f
fi

# Doc examples first, so the last summary printed is the whole suite's. One feature set for both
# (`cluster` adds the Ballista client and tests/cluster.rs; `gcs` and `azure` the other stores,
# tested in tests/stores.rs), so CI compiles DataFusion once.
cargo test --doc --features cluster,gcs,azure
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast --features cluster,gcs,azure
else
  cargo test --no-fail-fast --features cluster,gcs,azure --lib --bins --tests
fi
