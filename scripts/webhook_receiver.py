"""A merchant's webhook endpoint for the fault tests, the soak and the benchmark (its own process,
loopback only).

``POST /hook`` records the delivery the moment it arrives (event id, delivery id, attempt number, event
type, signature check), then waits ``delay`` seconds (a slow receiver) and answers ``status``.
``GET /deliveries`` lists every delivery recorded; ``GET /stats`` sums them up (count, distinct events,
types, signatures good and bad, first and last arrival); ``POST /config`` ``{"delay", "status",
"secret"}`` changes the behaviour; ``POST /reset`` forgets the deliveries (and takes ``{"secret"}``).

    python scripts/webhook_receiver.py --port 8123
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[dict] = []
        self.delay = 0.0
        self.status = 200
        self.secret: str | None = None

    def record(self, body: bytes, headers) -> dict:
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        event = event if isinstance(event, dict) else {}
        with self.lock:
            signature_ok = None
            if self.secret:
                signature_ok = signature_valid(self.secret, body, headers.get("EasyPay-Signature", ""))
            row = {
                "event_id": event.get("id"),
                "type": event.get("type"),
                "header_event_id": headers.get("EasyPay-Event-Id"),
                "delivery_id": headers.get("EasyPay-Delivery-Id"),
                "attempt": headers.get("EasyPay-Delivery-Attempt"),
                "signature_ok": signature_ok,
                "received_at": time.time(),
                "answered": False,
            }
            self.deliveries.append(row)
            return row

    def stats(self) -> dict:
        with self.lock:
            rows = list(self.deliveries)
        types: dict[str, int] = {}
        for row in rows:
            types[str(row["type"])] = types.get(str(row["type"]), 0) + 1
        arrivals = [row["received_at"] for row in rows]
        return {
            "count": len(rows),
            "unique": len({row["event_id"] for row in rows}),
            "types": types,
            "signature_ok": sum(row["signature_ok"] is True for row in rows),
            "signature_bad": sum(row["signature_ok"] is False for row in rows),
            "first": min(arrivals) if arrivals else None,
            "last": max(arrivals) if arrivals else None,
        }


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    t = next((v for k, v in parts if k.strip() == "t"), None)
    signatures = [v.strip().lower() for k, v in parts if k.strip() == "v1"]
    if not t or not signatures:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


STORE = Store()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self._body()
        if self.path.startswith("/hook"):
            row = STORE.record(body, self.headers)
            with STORE.lock:
                delay, status = STORE.delay, STORE.status
            if delay:
                time.sleep(delay)
            row["answered"] = True
            self._answer(status, {"received": True})
        elif self.path == "/config":
            data = json.loads(body or b"{}")
            with STORE.lock:
                if "delay" in data:
                    STORE.delay = float(data["delay"])
                if "status" in data:
                    STORE.status = int(data["status"])
                if "secret" in data:
                    STORE.secret = data["secret"] or None
            self._answer(200, {"delay": STORE.delay, "status": STORE.status})
        elif self.path == "/reset":
            data = json.loads(body or b"{}")
            with STORE.lock:
                STORE.deliveries.clear()
                if "secret" in data:
                    STORE.secret = data["secret"] or None
            self._answer(200, {"reset": True})
        else:
            self._answer(404, {"error": "not found"})

    def do_GET(self) -> None:
        if self.path == "/deliveries":
            with STORE.lock:
                rows = [dict(r) for r in STORE.deliveries]
            self._answer(200, rows)
        elif self.path == "/stats":
            self._answer(200, STORE.stats())
        elif self.path == "/health":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def log_message(self, format, *args):  # one line per delivery would only be noise
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
