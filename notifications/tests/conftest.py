"""A real SMTP server on loopback (aiosmtpd) and a local HTTP server standing in for Twilio's API.

Ports come from NOTIFICATION_TEST_PORTS (default 9800-9899), so parallel runs on one machine can be
given separate ranges.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller

from notifications.tests import scan

_RANGE = os.environ.get("NOTIFICATION_TEST_PORTS", "9800-9899")
_LOW, _HIGH = (int(p) for p in _RANGE.split("-"))
_port_lock = threading.Lock()


def free_port(exclude=()) -> int:
    """A port of the range that nothing listens on now (and not in ``exclude``)."""
    with _port_lock:
        for port in range(_LOW, _HIGH + 1):
            if port in exclude:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port in {_RANGE}")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        raise AssertionError(f"no {content_type} part")

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")


@dataclass
class SMTPBehaviour:
    """What the server answers: the first ``fail_times`` DATA commands get ``fail_reply``."""

    fail_reply: str = ""
    fail_times: int = 0
    seen_data: int = 0


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope):
        behaviour = self.server.behaviour
        behaviour.seen_data += 1
        if behaviour.fail_reply and behaviour.seen_data <= behaviour.fail_times:
            return behaviour.fail_reply
        self.server.messages.append(
            Received(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), raw=bytes(envelope.content))
        )
        return "250 OK queued"


@dataclass
class SMTPServer:
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    behaviour: SMTPBehaviour = field(default_factory=SMTPBehaviour)

    def fail(self, reply: str, times: int = 10**6) -> None:
        self.behaviour = SMTPBehaviour(fail_reply=reply, fail_times=times)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


@pytest.fixture
def smtp_server(settings):
    """A running SMTP server that Django's SMTP backend (as EMAIL_URL configures it) talks to."""
    server = SMTPServer(port=free_port())
    controller = Controller(_Handler(server), hostname="127.0.0.1", port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "EasyPay <receipts@easypay.test>"
    try:
        yield server
    finally:
        controller.stop()
    for received in server.messages:
        scan.check_raw_email(received.raw, where="to the test SMTP server")


@pytest.fixture
def smtp_down(settings):
    """EMAIL_* pointing at a loopback port where nothing listens (connection refused)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "EasyPay <receipts@easypay.test>"
    return settings.EMAIL_PORT


# --- Twilio stand-in --------------------------------------------------------------------------


@dataclass
class FakeTwilio:
    port: int = 0
    requests: list[dict] = field(default_factory=list)
    status: int = 201
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _twilio_handler(state: FakeTwilio):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            with state.lock:
                state.requests.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization")})
                number = len(state.requests)
                status = state.status
            if 200 <= status < 300:
                body = {"sid": f"SM{number:032d}", "status": "queued", "to": form.get("To"), "body": form.get("Body")}
            else:
                body = {"code": 21211 if status < 500 else 20500, "message": "refused", "status": status}
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def fake_twilio(settings):
    state = FakeTwilio(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _twilio_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE_URL = state.url
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
    for request in state.requests:
        scan.check("sms", [request["form"].get("Body", "")], where="to the Twilio stand-in")
