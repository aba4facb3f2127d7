"""A real local HTTP receiver for the tests that send webhooks: ``with running_receiver(path) as recv``.

It records every request and answers from a script: ``responses`` is consumed one per request (a
status code, ``("sleep", seconds)`` then 200, or ``("redirect", location)``); when it is empty,
``default_status`` (alias ``status``) answers. The body is ``body`` when set (raw bytes, any of them),
else ``{"ok": true}`` for a 2xx and a long refusal otherwise. The webhooks tests (``receiver``) and
the hostile-input tests (``hostile_receiver``) both use it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from requests.structures import CaseInsensitiveDict

REFUSAL = b"receiver says no " + b"x" * 4000


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    path: str = "/hook"
    requests: list[Received] = field(default_factory=list)
    responses: list = field(default_factory=list)
    default_status: int = 200
    body: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    @property
    def status(self) -> int:
        return self.default_status

    @status.setter
    def status(self, value: int) -> None:
        self.default_status = value

    @property
    def hits(self) -> int:
        with self.lock:
            return len(self.requests)

    def fail_next(self, count: int, status: int = 500) -> None:
        self.responses.extend([status] * count)


@contextlib.contextmanager
def running_receiver(path: str = "/hook") -> Iterator[Receiver]:
    recv: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recv.lock:
                recv.requests.append(Received(self.path, CaseInsensitiveDict(self.headers.items()), body))
                answer = recv.responses.pop(0) if recv.responses else recv.default_status
                fixed = recv.body
            if isinstance(answer, tuple) and answer[0] == "sleep":
                time.sleep(answer[1])
                answer = 200
            if isinstance(answer, tuple) and answer[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", answer[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fixed is not None:
                payload = fixed
            else:
                payload = b'{"ok": true}' if 200 <= answer < 300 else REFUSAL
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
    recv = Receiver(server=server, path=path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()
