#!/usr/bin/env python3
"""A stand-in for Torq's public API on loopback, for `auditlake pull`'s tests.

Serves a feed (NDJSON, one entry a line) the way ../shared/TORQ-AUDIT-LOGS.md describes:

- POST /v1/auth/token: HTTP Basic client id and secret, form grant_type=client_credentials;
  answers {"access_token", "expires_in", "token_type": "Bearer"}.
- GET /public/v1alpha/audit_logs: Bearer token; start_time <= timestamp < end_time (RFC 3339;
  both absent: the last 24 hours), page_size (1..500, default 100), page_token, order
  (asc|desc, default desc); answers {"audit_logs": [...], "next_page_token": "..."}, "" at the end.
- 50 requests a second across both: more is answered 429 with Retry-After.

And misbehaves on request, deterministically (counted per request):

  --token-uses N       a token dies after N uses (401), as if it expired mid-backfill
  --fail-every N       every Nth audit-log request answers 500 or 503 (alternately)
  --reset-every N      every Nth audit-log request has its connection closed without an answer
  --throttle-every N   every Nth audit-log request answers 429 with Retry-After: --retry-after
  --slow-every N       every Nth audit-log request waits --slow-seconds before answering
  --repeat-boundary    each page starts with the last entry of the page before
  --late-after TIME    entries at or after TIME (every --late-every'th of them) stay invisible
                       until POST /_control/release, as entries Torq adds minutes late

GET /_control/stats answers what happened (requests, 401s, 429s, tokens issued ...), so tests
can check the client's behaviour and that no token leaked. Prints "PORT <n>" once listening.
"""

import argparse
import base64
import bisect
import json
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RATE_LIMIT = 50


def parse_time(text):
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t


def micros(t):
    return int((t - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))


class Feed:
    def __init__(self, path, late_after, late_every):
        entries = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                e = json.loads(line)
                entries.append((micros(parse_time(e["timestamp"])), e["id"], line))
        entries.sort()
        self.entries = entries
        self.stamps = [e[0] for e in entries]
        self.late = set()
        if late_after is not None:
            cut = micros(parse_time(late_after))
            tail = [i for i, (ts, _, _) in enumerate(entries) if ts >= cut]
            self.late = set(tail[::late_every])
        self.released = False

    def visible(self, start, end):
        """The entries with start <= timestamp < end that can be seen now, oldest first: a
        slice (found by bisection) unless some of them are still hidden."""
        lo = bisect.bisect_left(self.stamps, start)
        hi = bisect.bisect_left(self.stamps, end)
        if self.released or not self.late:
            return Window(self.entries, lo, hi)
        return Window([e for i, e in enumerate(self.entries[lo:hi], lo) if i not in self.late], 0, None)


class Window:
    """A range of a sorted list, read in either order without copying it."""

    def __init__(self, items, lo, hi):
        self.items, self.lo = items, lo
        self.hi = len(items) if hi is None else hi

    def __len__(self):
        return self.hi - self.lo

    def page(self, offset, size, descending):
        if descending:
            top = self.hi - offset
            return self.items[max(self.lo, top - size) : max(self.lo, top)][::-1]
        return self.items[self.lo + offset : min(self.hi, self.lo + offset + size)]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.feed = Feed(args.feed, args.late_after, args.late_every)
        self.tokens = {}  # token -> uses left (None: unlimited)
        self.issued = []
        self.log_requests = 0
        self.stats = {
            "requests": 0,
            "token_requests": 0,
            "log_requests": 0,
            "unauthorized": 0,
            "throttled": 0,
            "rate_limited": 0,
            "failed": 0,
            "resets": 0,
            "slow": 0,
            "served_entries": 0,
            "bad_requests": 0,
            "orders": {},
        }
        self.recent = []  # request times in the last second

    def over_rate(self):
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < 1.0]
        self.recent.append(now)
        return len(self.recent) > RATE_LIMIT


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "torq-standin/1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        url = urlparse(self.path)
        body = self.read_body()
        st = self.state
        if url.path == "/_control/release":
            with st.lock:
                st.feed.released = True
            return self.answer(200, {"released": len(st.feed.late)})
        if url.path != "/v1/auth/token":
            return self.answer(404, {"error": "not found"})
        with st.lock:
            st.stats["requests"] += 1
            st.stats["token_requests"] += 1
            if st.over_rate():
                st.stats["rate_limited"] += 1
                return self.answer(429, {"error": "rate limited"}, [("Retry-After", "1")])
        auth = self.headers.get("Authorization", "")
        expected = base64.b64encode(f"{st.args.client_id}:{st.args.client_secret}".encode()).decode()
        form = parse_qs(body.decode())
        if auth != f"Basic {expected}" or form.get("grant_type") != ["client_credentials"]:
            with st.lock:
                st.stats["unauthorized"] += 1
            return self.answer(401, {"error": "invalid_client"})
        token = uuid.uuid4().hex + uuid.uuid4().hex
        with st.lock:
            st.tokens[token] = st.args.token_uses
            st.issued.append(token)
        return self.answer(200, {"access_token": token, "expires_in": st.args.token_ttl, "token_type": "Bearer"})

    def do_GET(self):
        url = urlparse(self.path)
        st = self.state
        if url.path == "/_control/stats":
            with st.lock:
                return self.answer(200, {**st.stats, "tokens_issued": list(st.issued)})
        if url.path != "/public/v1alpha/audit_logs":
            return self.answer(404, {"error": "not found"})
        a = st.args
        with st.lock:
            st.stats["requests"] += 1
            st.stats["log_requests"] += 1
            st.log_requests += 1
            n = st.log_requests
            if st.over_rate():
                st.stats["rate_limited"] += 1
                return self.answer(429, {"error": "rate limited"}, [("Retry-After", "1")])
            slow = a.slow_every and n % a.slow_every == 0
            if slow:
                st.stats["slow"] += 1
        if slow:
            time.sleep(a.slow_seconds)
        with st.lock:
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            uses = st.tokens.get(token, 0) if token else 0
            if token not in st.tokens or (uses is not None and uses <= 0):
                st.stats["unauthorized"] += 1
                return self.answer(401, {"error": "unauthorized"})
            if uses is not None:
                st.tokens[token] = uses - 1
        if a.reset_every and n % a.reset_every == 0:
            with st.lock:
                st.stats["resets"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if a.fail_every and n % a.fail_every == 0:
            with st.lock:
                st.stats["failed"] += 1
            return self.answer(500 if (n // a.fail_every) % 2 else 503, {"error": "internal"})
        if a.throttle_every and n % a.throttle_every == 0:
            with st.lock:
                st.stats["throttled"] += 1
            return self.answer(429, {"error": "slow down"}, [("Retry-After", str(a.retry_after))])

        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            now = datetime.now(timezone.utc)
            start = parse_time(q["start_time"]) if "start_time" in q else now - timedelta(hours=24)
            end = parse_time(q["end_time"]) if "end_time" in q else now
            size = int(q.get("page_size", "100"))
            order = q.get("order", "desc")
            if not 1 <= size <= 500 or order not in ("asc", "desc"):
                raise ValueError("page_size or order")
            offset = 0
            if q.get("page_token"):
                t = json.loads(base64.urlsafe_b64decode(q["page_token"]))
                if (t["s"], t["e"], t["o"]) != (q.get("start_time"), q.get("end_time"), order):
                    raise ValueError("page_token of another query")
                offset = t["n"]
        except (ValueError, KeyError) as e:
            with st.lock:
                st.stats["bad_requests"] += 1
            return self.answer(400, {"error": f"bad request: {e}"})
        with st.lock:
            rows = st.feed.visible(micros(start), micros(end))
            st.stats["orders"][order] = st.stats["orders"].get(order, 0) + 1
        page = rows.page(offset, size, order == "desc")
        following = offset + size
        next_token = ""
        if following < len(rows):
            n_next = following - 1 if a.repeat_boundary else following
            token = {"s": q.get("start_time"), "e": q.get("end_time"), "o": order, "n": n_next}
            next_token = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
        with st.lock:
            st.stats["served_entries"] += len(page)
        body = '{"audit_logs":[' + ",".join(r[2] for r in page) + '],"next_page_token":' + json.dumps(next_token) + "}"
        return self.answer(200, body.encode())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feed", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client-id", default="test-client")
    p.add_argument("--client-secret", default="test-secret")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--token-uses", type=int, default=None)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--reset-every", type=int, default=0)
    p.add_argument("--throttle-every", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--slow-every", type=int, default=0)
    p.add_argument("--slow-seconds", type=float, default=0.5)
    p.add_argument("--repeat-boundary", action="store_true")
    p.add_argument("--late-after", default=None)
    p.add_argument("--late-every", type=int, default=1)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
