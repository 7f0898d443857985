#!/usr/bin/env bash
# Starts the Azure Blob Storage emulator (Azurite, from npm) on loopback for tests/stores.rs,
# installing it under /var/tmp/auditlake-node on first use (each test creates its own container).
# Prints `export ...` lines for the tests' environment:
#   eval "$(scripts/store-emulators.sh start)"     ...     scripts/store-emulators.sh stop
# Azurite honours create-only writes (If-None-Match), which delta-rs uses for safe commits.
set -euo pipefail
prefix="${AUDITLAKE_NODE_PREFIX:-/var/tmp/auditlake-node}"
state="${TMPDIR:-/tmp}/auditlake-store-emulators"
case "${1:-start}" in
  start)
    command -v npm >/dev/null || { echo "error: npm not found; install Node.js (Debian: apt-get install npm)" >&2; exit 1; }
    if [ ! -x "$prefix/node_modules/.bin/azurite-blob" ]; then
      mkdir -p "$prefix"
      (cd "$prefix" && npm install --no-audit --no-fund --silent azurite@3) >&2
    fi
    mkdir -p "$state"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$prefix/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence \
      --skipApiVersionCheck --silent >"$state/azurite.log" 2>&1 &
    echo $! >"$state/azurite.pid"
    for _ in $(seq 1 100); do
      if curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
      sleep 0.1
    done
    curl -s -o /dev/null "http://127.0.0.1:$port/" \
      || { cat "$state/azurite.log" >&2; echo "error: Azurite did not start" >&2; exit 1; }
    echo "export AUDITLAKE_TEST_AZURE_ENDPOINT=http://127.0.0.1:$port"
    ;;
  stop)
    [ -f "$state/azurite.pid" ] && kill "$(cat "$state/azurite.pid")" 2>/dev/null || true
    rm -f "$state/azurite.pid"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
