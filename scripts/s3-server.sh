#!/usr/bin/env bash
# Starts a real S3-protocol server (moto, from PyPI) on loopback for the S3 tests, installing it
# into a private venv on first use. Prints `export ...` lines for the tests' environment:
#   eval "$(scripts/s3-server.sh start)"     ...     scripts/s3-server.sh stop
# moto honours conditional puts (If-None-Match), which delta-rs uses for safe commits on S3.
set -euo pipefail
venv="${AUDITLAKE_VENV:-/var/tmp/auditlake-venv}"
state="${TMPDIR:-/tmp}/auditlake-s3-server"
case "${1:-start}" in
  start)
    if [ ! -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet "moto[server]==5.*" >&2
    fi
    mkdir -p "$state"
    # Port 0 is not supported by moto_server: pick a free one.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 100); do
      if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; then break; fi
      sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/" >/dev/null || { cat "$state/log" >&2; echo "error: moto did not start" >&2; exit 1; }
    echo "export AUDITLAKE_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
    ;;
  stop)
    [ -f "$state/pid" ] && kill "$(cat "$state/pid")" 2>/dev/null || true
    rm -f "$state/pid"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
