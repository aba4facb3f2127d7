"""Fixtures of the hostile-input tests: the security tests' merchants and egress guard, a webhook
receiver that answers whatever bytes a test gives it, and helpers to count what was stored."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.security.conftest import egress_guard, intruder, owner

__all__ = ["egress_guard", "intruder", "owner"]


@dataclass
class HostileReceiver:
    """A local HTTP server whose every answer is ``status`` with ``body`` (raw bytes, any of them)."""

    server: ThreadingHTTPServer
    status: int = 200
    body: bytes = b"ok"
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"


@pytest.fixture
def hostile_receiver():
    recv: HostileReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recv.lock:
                recv.hits += 1
                status, body = recv.status, recv.body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recv = HostileReceiver(server=server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield recv
    server.shutdown()
    server.server_close()


def pytest_terminal_summary(terminalreporter):
    from .test_api_surface import STATS

    if STATS["requests"]:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATS["statuses"].items()))
        terminalreporter.write_line(
            f"hostile API layer: {STATS['requests']} requests over {len(STATS['operations'])} operations "
            f"(targets {dict(STATS['targets'])}; statuses {statuses})"
        )
