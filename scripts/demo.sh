#!/usr/bin/env bash
# Builds auditlake, ingests sample-data/ into ./lake (or $AUDITLAKE_LAKE) and prints the
# headline aggregations. Safe to rerun: the second ingest finds only duplicates.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/auditlake-target}"
# The binary alone, with the features the tests use (`cluster,gcs,azure`), so that the demo and
# scripts/test.sh share one set of compiled dependencies: any other feature set unifies
# DataFusion's features differently and compiles it a second time.
cargo build --quiet --bin auditlake --features cluster,gcs,azure
bin="$CARGO_TARGET_DIR/debug/auditlake"

echo "== ingest sample-data/ (malformed/ holds bad records on purpose: exit status 3)"
status=0
"$bin" ingest sample-data/ || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi

for q in by_family by_action by_actor_type by_scenario by_tag by_day; do
  echo
  echo "== auditlake query --name $q"
  "$bin" query --name "$q"
done
echo
echo "== auditlake stats"
"$bin" stats
echo
echo "== auditlake report (September 2026, the sample's month)"
"$bin" report --from 2026-09-01 --to 2026-09-30 --out report-2026-09.html
"$bin" report --from 2026-09-01 --to 2026-09-30 --section access
echo
echo "Next: open report-2026-09.html; $bin report --help, $bin query --list, $bin search --help, $bin query \"SELECT ... FROM audit_log\""
