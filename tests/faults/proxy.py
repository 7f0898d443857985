"""A fault-injecting HTTP proxy on loopback, between auditlake and an S3-protocol server.

Each request draws from a seeded random stream (request order decides, so a run is repeatable
when the client's requests are) and, at the given rates, gets instead of the server's answer:

- `503`: 503 SlowDown (S3's throttling error), the request never reaches the server;
- `500`: 500 InternalError, never reaching the server;
- `reset`: the connection closed without an answer, never reaching the server;
- `lost`: the request reaches the server and takes effect, then the connection is closed before
  the answer (the hard case: a PUT that succeeded, seen by the client as failed);
- `truncate`: the server's answer with its full Content-Length but half of its body;
- `slow`: the answer after --slow-seconds (set past the client's timeout).

Prints `PORT <n>` when listening. GET /_faults/stats (sent to the proxy itself) answers the
counts of each fault injected so far.

    python proxy.py --upstream http://127.0.0.1:9000 --seed 7 --rate 503=0.05 --rate reset=0.02
    python proxy.py --upstream ... --rate lost=0.5 --only 'PUT .*/_delta_log/[0-9]+[.]json' 
"""

import argparse
import http.client
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ["503", "500", "reset", "lost", "truncate", "slow"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", action="append", default=[], help="FAULT=P, e.g. 503=0.05")
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--only", help="inject only into requests whose 'METHOD path' matches this regex")
    args = parser.parse_args()
    rates = {}
    for item in args.rate:
        name, p = item.split("=")
        if name not in FAULTS:
            sys.exit(f"unknown fault {name}; known: {', '.join(FAULTS)}")
        rates[name] = float(p)
    upstream = urllib.parse.urlsplit(args.upstream)
    rng = random.Random(args.seed)
    lock = threading.Lock()
    counts = {name: 0 for name in FAULTS}
    counts["requests"] = 0

    only = re.compile(args.only) if args.only else None

    def draw(request):
        if only and not only.search(request):
            with lock:
                counts["requests"] += 1
            return None
        with lock:
            counts["requests"] += 1
            u = rng.random()
            for name in FAULTS:
                p = rates.get(name, 0.0)
                if u < p:
                    counts[name] += 1
                    return name
                u -= p
            return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/_faults/stats":
                return self.answer(200, {"Content-Type": "application/json"}, json.dumps(counts).encode())
            fault = draw(f"{self.command} {urllib.parse.unquote(self.path)}")
            if fault in ("503", "500"):
                code, name = (503, "SlowDown") if fault == "503" else (500, "InternalError")
                xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{name}</Code><Message>injected</Message></Error>"
                return self.answer(code, {"Content-Type": "application/xml"}, xml.encode())
            if fault == "reset":
                return self.drop()
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "proxy-connection")}
            conn.request(self.command, self.path, body=body if body else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
            conn.close()
            if fault == "lost":
                return self.drop()
            if fault == "slow":
                time.sleep(args.slow_seconds)
            if fault == "truncate" and self.command != "HEAD" and len(data) > 1:
                self.send_response(resp.status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self.drop()
            self.answer(resp.status, out_headers, data, head=self.command == "HEAD", length=resp.getheader("Content-Length"))

        def answer(self, code, headers, data, head=False, length=None):
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", length if head and length is not None else str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def drop(self):
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # A client that timed out (a `slow` answer) hangs up mid-answer: expected, not news.
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
