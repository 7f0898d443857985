#!/usr/bin/env bash
# The benchmark: auditlake against DuckDB (and, for ingest, Polars and chDB) on the same
# generated feed, on this machine.
#
#   bench/run.sh                      # 1M events over 30 days (about 530 MB of NDJSON)
#   bench/run.sh --events 10000000    # 10M events
#   bench/run.sh --runs 5 --query-runs 9
#
# Installs the DuckDB CLI (PyPI's duckdb-cli, the native binary) into a venv, builds auditlake in
# release mode (a clean build takes about 40 minutes on two cores), then runs bench/bench.py.
# Results go to bench/results/ as JSON, Markdown and an SVG chart.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditlake-target}"
venv="${AUDITLAKE_BENCH_VENV:-/var/tmp/auditlake-bench-venv}"
# The peers, pinned: DuckDB's CLI (the reference for queries), Polars and chDB (ingest).
peers="duckdb-cli==${DUCKDB_VERSION:-1.5.6} polars==2.1.0 chdb==4.4.0"

if ! { [ -x "$venv/bin/duckdb" ] && "$venv/bin/python" -c 'import polars, chdb' 2>/dev/null; }; then
  echo "[bench] installing $peers into $venv" >&2
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q $peers
fi
echo "[bench] building auditlake (release, with the Ballista client for the cluster rows)" >&2
cargo build --release --quiet --features cluster,gcs,azure
exec python3 bench/bench.py --auditlake "$CARGO_TARGET_DIR/release/auditlake" --duckdb "$venv/bin/duckdb" \
  --polars-python "$venv/bin/python" --chdb-python "$venv/bin/python" "$@"
