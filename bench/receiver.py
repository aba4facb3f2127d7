"""A tiny threaded webhook receiver for the fan-out scenario (its own process, loopback only).

``POST /hook`` answers 200 at once and counts the delivery: total, distinct event ids, signature
checks (``EasyPay-Signature: t=..,v1=HMAC-SHA256("<t>.<body>")`` under the endpoint secret, when known),
and the time of the first and last delivery. ``GET /stats`` returns the counters as JSON;
``POST /reset`` clears them and takes ``{"secret": "whsec_..."}`` to check signatures with.

    python bench/receiver.py --port 8123
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset(None)

    def reset(self, secret: str | None) -> None:
        with self.lock:
            self.secret = secret
            self.count = 0
            self.ids: set[str] = set()
            self.types: dict[str, int] = {}
            self.signature_ok = 0
            self.signature_bad = 0
            self.first = None
            self.last = None

    def record(self, body: bytes, signature: str) -> None:
        now = time.time()
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        with self.lock:
            self.count += 1
            self.first = self.first or now
            self.last = now
            if isinstance(event, dict):
                self.ids.add(str(event.get("id")))
                kind = str(event.get("type"))
                self.types[kind] = self.types.get(kind, 0) + 1
            if self.secret:
                if _signature_valid(self.secret, body, signature):
                    self.signature_ok += 1
                else:
                    self.signature_bad += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "count": self.count,
                "unique": len(self.ids),
                "types": dict(self.types),
                "signature_ok": self.signature_ok,
                "signature_bad": self.signature_bad,
                "first": self.first,
                "last": self.last,
            }


def _signature_valid(secret: str, body: bytes, header: str) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    t, v1 = parts.get("t"), parts.get("v1")
    if not t or not v1:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1.strip().lower())


COUNTERS = Counters()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self._read_body()
        if self.path == "/reset":
            secret = (json.loads(body or b"{}") or {}).get("secret")
            COUNTERS.reset(secret)
            self._answer(200, {"ok": True})
        elif self.path.startswith("/hook"):
            COUNTERS.record(body, self.headers.get("EasyPay-Signature", ""))
            self._answer(200, {"received": True})
        else:
            self._answer(404, {"error": "not found"})

    def do_GET(self):
        if self.path == "/stats":
            self._answer(200, COUNTERS.snapshot())
        else:
            self._answer(404, {"error": "not found"})

    def log_message(self, format, *args):  # quiet: one line per delivery would cost more than the count
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
