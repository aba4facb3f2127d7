"""The emulator's HTTP server: the XML API plus JSON controls for tests.

``POST /xml/v1/request.api`` speaks Authorize.Net's XML API (see ``xmlapi``). Test controls:

* ``POST /_emulator/config`` ``{"latency_ms", "fail_mode", "fail_count", "hang_seconds",
  "settle_delay_seconds", "webhook_url"}`` (any subset) changes behaviour at run time.
  ``fail_mode`` is null, ``"http500"``, ``"malformed"``, ``"drop"`` (close without a reply) or
  ``"timeout"`` (hold the connection ``hang_seconds``, then close); ``fail_count`` limits it to
  the next N API calls. The request is processed (a charge is recorded) *before* latency or a
  failure applies, as when a real reply is lost on the way back.
* ``POST /_emulator/settle`` closes a batch now; ``POST /_emulator/reset`` forgets everything;
  ``POST /_emulator/review`` ``{"transaction_id", "action": "approve"|"decline"}`` resolves a
  held transaction; ``GET /_emulator/transactions``, ``/config``, ``/webhooks`` inspect state.
"""

from __future__ import annotations

import copy
import email.message
import email.parser
import enum
import http.client
import io
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, TypedDict

from ..emulator_credentials import EMULATOR_API_LOGIN_ID, EMULATOR_SIGNATURE_KEY, EMULATOR_TRANSACTION_KEY
from . import xmlapi
from .state import SandboxState
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)

API_PATH = "/xml/v1/request.api"


class _Unset(enum.Enum):
    """An argument left out of ``configure`` (``None`` is a value there)."""

    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET
FAIL_MODES = (None, "http500", "malformed", "drop", "timeout", "rewrite", "raw")
# The same variables (and defaults) EasyPay's settings read, so one environment configures both.
DEFAULT_API_LOGIN_ID = EMULATOR_API_LOGIN_ID
DEFAULT_TRANSACTION_KEY = EMULATOR_TRANSACTION_KEY
DEFAULT_SIGNATURE_KEY = EMULATOR_SIGNATURE_KEY


class Credentials(TypedDict):
    api_login_id: str
    transaction_key: str
    signature_key: str


class _Initial(TypedDict):
    latency_ms: int
    settle_delay_seconds: float
    webhook_url: str | None


def env_credentials() -> Credentials:
    return {
        "api_login_id": os.environ.get("AUTHORIZE_NET_API_LOGIN_ID") or DEFAULT_API_LOGIN_ID,
        "transaction_key": os.environ.get("AUTHORIZE_NET_TRANSACTION_KEY") or DEFAULT_TRANSACTION_KEY,
        "signature_key": os.environ.get("AUTHORIZE_NET_SIGNATURE_KEY") or DEFAULT_SIGNATURE_KEY,
    }


@dataclass
class EmulatorConfig:
    latency_ms: int = 0
    fail_mode: str | None = None
    fail_count: int | None = None  # None: every call while fail_mode is set
    hang_seconds: float = 30.0
    # "rewrite": [[regex, text], ...]: each match in the real reply replaced by the text (taken as
    # is, no group references); "raw": this text is the whole reply.
    # Both are encoded UTF-8 with surrogatepass, so a lone surrogate becomes the bytes no decoder takes.
    rewrite: list[list[str]] | None = None
    raw_body: str | None = None


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that inserts ``text`` as is (no group references)."""
    return lambda _match: text


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    # A TCP server's requests are its accepted sockets (the (data, socket) form is a UDP server's).
    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: object) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on kept-alive clients too, so a stopped emulator is really gone."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("sandbox: connection already closed")

    def handle_error(self, request: object, client_address: object) -> None:
        # a client that hung up mid-reply (our timeout tests do) is not a server error
        logger.debug("sandbox: connection from %s ended abruptly", client_address)


# The request line and header lines every client of the emulator sends (requests, urllib3, the SDK):
# these are read without the email package, a tenth of a charge's CPU. Anything else (another
# version, folded or odd header lines) is parsed by the standard library, as before.
_PLAIN_REQUEST_LINE = re.compile(rb"([A-Z]+) (/[!-~]*) HTTP/1\.1\r?\n")
_PLAIN_HEADER_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n")
_MAX_LINE = 65536  # http.client's limits on a header line and on their number
_MAX_HEADERS = 100


def _read_headers(rfile: io.BufferedIOBase, message_class: type[email.message.Message]) -> email.message.Message:
    """``http.client.parse_headers``: the same headers (and errors), parsed by hand when every line is plain."""
    lines = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            break
    text = [line.decode("iso-8859-1") for line in lines[:-1]]
    plain = [_PLAIN_HEADER_LINE.fullmatch(line) for line in text]
    if not all(plain):
        return email.parser.Parser(_class=message_class).parsestr(b"".join(lines).decode("iso-8859-1"))
    message = message_class()
    for match in plain:
        assert match is not None  # all() above
        message.set_raw(match[1], match[2])  # what the email parser stores for such a line (compat32)
    return message


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    raw_requestline: bytes  # set by handle_one_request before parse_request
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections
    disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall
    timeout = 60  # idle keep-alive connections are closed after this
    # Replies are buffered and sent when the request is done (handle_one_request and finish flush): one
    # send for headers and body instead of one each. Larger than any reply but the longest lists.
    wbufsize = 64 * 1024
    server_version = "EasyPayAnetSandbox/1.0"

    def log_message(self, format: str, *args: object) -> None:  # never log bodies; requests at debug
        if logger.isEnabledFor(logging.DEBUG):  # every request passes here: format only what is logged
            logger.debug("sandbox: %s %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request`` for a plain HTTP/1.1 request, the library's for the rest."""
        request_line = _PLAIN_REQUEST_LINE.fullmatch(self.raw_requestline)
        if request_line is None:
            return super().parse_request()
        self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
        self.command, path = request_line[1].decode(), request_line[2].decode()
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        self.request_version = "HTTP/1.1"
        self.close_connection = False
        try:
            self.headers = _read_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(HTTPStatus.LENGTH_REQUIRED, b"", "text/plain")
            return None
        return self.rfile.read(length)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        sandbox = self.server.sandbox
        if self.path == API_PATH:
            self._api(sandbox, body)
        elif self.path.startswith("/_emulator/"):
            self._control(sandbox, self.path.removeprefix("/_emulator/"), body)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"Not Found", "text/plain")

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        views = {
            "/_emulator/transactions": sandbox.state.snapshot,
            "/_emulator/config": sandbox.config_view,
            "/_emulator/webhooks": lambda: sandbox.webhooks.deliveries,
            "/_emulator/health": lambda: {"status": "ok"},
        }
        view = views.get(self.path)
        if view is None:
            self._send(HTTPStatus.NOT_FOUND, b"Not Found", "text/plain")
        else:
            self._json(view())

    def _api(self, sandbox: SandboxServer, body: bytes) -> None:
        reply = xmlapi.handle(sandbox.state, body, self.headers.get("Content-Type", ""))
        config = sandbox.take_fault()
        if config.latency_ms:
            sandbox.stopping.wait(config.latency_ms / 1000)
        mode = config.fail_mode
        if mode == "http500":
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR, b"<html><body>500 Internal Server Error</body></html>", "text/html"
            )
        elif mode == "malformed":
            self._send(HTTPStatus.OK, reply.body[: len(reply.body) // 2], "application/xml; charset=utf-8")
        elif mode == "rewrite":
            text = reply.body.decode("utf-8")
            for pattern, replacement in config.rewrite or []:
                text = re.sub(pattern, _literal(replacement), text)
            self._send(HTTPStatus.OK, text.encode("utf-8", "surrogatepass"), "application/xml; charset=utf-8")
        elif mode == "raw":
            body = (config.raw_body or "").encode("utf-8", "surrogatepass")
            self._send(HTTPStatus.OK, body, "application/xml; charset=utf-8")
        elif mode in ("drop", "timeout"):
            if mode == "timeout":
                sandbox.stopping.wait(config.hang_seconds)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("sandbox: client already gone")
        else:
            self._send(HTTPStatus.OK, reply.body, "application/xml; charset=utf-8")

    def _control(self, sandbox: SandboxServer, action: str, body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            self._json({"error": "body must be JSON"}, HTTPStatus.BAD_REQUEST)
            return
        if action == "config":
            try:
                sandbox.configure(**data)
            except (TypeError, ValueError) as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
                return
            self._json(sandbox.config_view())
        elif action == "settle":
            batch = sandbox.state.settle(force=True)
            self._json({"batch_id": batch.batch_id if batch else None})
        elif action == "reset":
            sandbox.reset()
            self._json({"status": "reset"})
        elif action == "review":
            tx = sandbox.state.review(str(data.get("transaction_id", "")), str(data.get("action", "")))
            if tx is None:
                self._json({"error": "no held transaction with that id, or action not approve/decline"}, 404)
            else:
                self._json(tx.public())
        else:
            self._send(HTTPStatus.NOT_FOUND, b"Not Found", "text/plain")


class SandboxServer:
    """The emulator, in process: ``SandboxServer(port=0).start()``; ``.url``; ``.stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: int = 0,
        webhook_url: str | None = None,
        settle_delay_seconds: float = 0.0,
        db_path: str | None = None,
        api_login_id: str | None = None,
        transaction_key: str | None = None,
        signature_key: str | None = None,
        webhook_retry_delays: tuple[float, ...] = (0.5, 2.0),
    ) -> None:
        defaults = env_credentials()
        self.signature_key = signature_key or defaults["signature_key"]
        self.webhooks = WebhookSender(
            signature_key=self.signature_key, url=webhook_url, retry_delays=webhook_retry_delays
        )
        self.state = SandboxState(
            api_login_id=api_login_id or defaults["api_login_id"],
            transaction_key=transaction_key or defaults["transaction_key"],
            settle_delay_seconds=settle_delay_seconds,
            db_path=db_path,
            on_events=self.webhooks.notify,
        )
        self._initial: _Initial = {
            "latency_ms": latency_ms,
            "settle_delay_seconds": settle_delay_seconds,
            "webhook_url": webhook_url,
        }
        self._config = EmulatorConfig(latency_ms=latency_ms)
        self._config_lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), self)
        bound_host, bound_port = self._httpd.server_address[:2]
        # after bind this is getsockname(), whose host is text for an AF_INET/AF_INET6 socket
        assert isinstance(bound_host, str)
        self.host: str = bound_host
        self.port: int = bound_port
        self._threads: list[threading.Thread] = []
        self._serving = False

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The XML API endpoint, what AUTHORIZE_NET_ENDPOINT should be set to."""
        return self.base_url + API_PATH

    # configuration -------------------------------------------------------------------------------

    def configure(
        self,
        *,
        latency_ms: int | None = None,
        fail_mode: str | _Unset | None = _UNSET,
        fail_count: int | str | _Unset | None = _UNSET,
        hang_seconds: float | None = None,
        settle_delay_seconds: float | None = None,
        webhook_url: str | _Unset | None = _UNSET,
        rewrite: Iterable[Sequence[str]] | _Unset | None = _UNSET,
        raw_body: str | _Unset | None = _UNSET,
    ) -> None:
        """Change behaviour at run time; arguments left out keep their value."""
        if fail_mode is not _UNSET and fail_mode not in FAIL_MODES:
            raise ValueError(f"fail_mode must be one of {FAIL_MODES}")
        with self._config_lock:
            if latency_ms is not None:
                self._config.latency_ms = max(0, int(latency_ms))
            if fail_mode is not _UNSET:
                self._config.fail_mode = fail_mode
            if fail_count is not _UNSET:
                self._config.fail_count = None if fail_count is None else int(fail_count)
            if hang_seconds is not None:
                self._config.hang_seconds = float(hang_seconds)
            if rewrite is not _UNSET:
                self._config.rewrite = None if rewrite is None else [[str(a), str(b)] for a, b in rewrite]
            if raw_body is not _UNSET:
                self._config.raw_body = None if raw_body is None else str(raw_body)
        if settle_delay_seconds is not None:
            self.state.settle_delay_seconds = float(settle_delay_seconds)
        if webhook_url is not _UNSET:
            self.webhooks.url = webhook_url or None

    def config_view(self) -> dict:
        with self._config_lock:
            view = asdict(self._config)
        view["settle_delay_seconds"] = self.state.settle_delay_seconds
        view["webhook_url"] = self.webhooks.url
        view["url"] = self.url
        return view

    def take_fault(self) -> EmulatorConfig:
        """The behaviour for the API call being answered now (consumes one of ``fail_count``)."""
        with self._config_lock:
            # a shallow copy is enough: configure() replaces ``rewrite`` and never changes it in place
            current = copy.copy(self._config)
            if self._config.fail_mode and self._config.fail_count is not None:
                self._config.fail_count -= 1
                if self._config.fail_count <= 0:
                    self._config.fail_mode, self._config.fail_count = None, None
        return current

    def reset(self) -> None:
        """Back to the state and behaviour the server started with."""
        with self._config_lock:
            self._config = EmulatorConfig(latency_ms=self._initial["latency_ms"])
        self.state.settle_delay_seconds = self._initial["settle_delay_seconds"]
        self.webhooks.url = self._initial["webhook_url"]
        self.webhooks.clear()
        self.state.reset()

    # lifecycle -----------------------------------------------------------------------------------

    def _settle_ticker(self) -> None:
        while not self.stopping.is_set():
            delay = self.state.settle_delay_seconds
            if delay > 0:
                self.state.settle(force=False)
            self.stopping.wait(min(1.0, delay / 4) if delay > 0 else 0.5)

    def _spawn(self, target: Callable[[], object], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> SandboxServer:
        """Serve in background threads and return at once."""
        self._serving = True
        self.webhooks.start()
        self._spawn(self._settle_ticker, "anet-sandbox-settle")
        self._spawn(lambda: self._httpd.serve_forever(poll_interval=0.1), "anet-sandbox-http")
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command-line entry points)."""
        self._serving = True
        self.webhooks.start()
        self._spawn(self._settle_ticker, "anet-sandbox-settle")
        try:
            self._httpd.serve_forever(poll_interval=0.1)
        except KeyboardInterrupt:
            logger.info("sandbox: interrupted")
        finally:
            self.stop()

    def stop(self) -> None:
        self.stopping.set()
        if self._serving:
            self._httpd.shutdown()
            self._serving = False
        self._httpd.server_close()
        self._httpd.close_connections()
        self.webhooks.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()
        self.state.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
