"""Fixtures of the webhooks tests: a real local HTTP receiver, endpoints, events."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from requests.structures import CaseInsensitiveDict

from webhooks import services


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records every request and answers from a script.

    ``responses`` is consumed one per request (status code, or ``("sleep", seconds)``); when it is empty
    ``default_status`` answers."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    responses: list = field(default_factory=list)
    default_status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/easypay"

    def fail_next(self, count: int, status: int = 500) -> None:
        self.responses.extend([status] * count)


@pytest.fixture
def receiver():
    recv: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with recv.lock:
                recv.requests.append(Received(self.path, CaseInsensitiveDict(self.headers.items()), body))
                answer = recv.responses.pop(0) if recv.responses else recv.default_status
            if isinstance(answer, tuple) and answer[0] == "sleep":
                time.sleep(answer[1])
                answer = 200
            if isinstance(answer, tuple) and answer[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", answer[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = b'{"ok": true}' if 200 <= answer < 300 else b"receiver says no " + b"x" * 4000
            self.send_response(answer)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recv = Receiver(server=server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield recv
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint_for(db):
    """``endpoint_for(merchant, url, events=["*"])`` -> (endpoint, secret)."""

    def _make(merchant, url, events=None, **fields):
        created = services.endpoint_create(merchant=merchant, url=url, events=events or ["*"], **fields)
        return created.endpoint, created.secret

    return _make


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """``emit(merchant, type="payment.captured", data=...)`` records an event the way services do
    (inside a transaction) and runs the on-commit fan-out, as a real commit would."""

    def _emit(merchant, event_type="payment.captured", data=None):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return services.event_record(
                merchant_id=merchant.pk,
                event_type=event_type,
                data=data or {"id": "pay_test", "amount": "25.00", "currency": "USD", "status": "captured"},
            )

    return _emit
