"""The transport against real local sockets: every way a processor can fail, and what goes on the wire.

Each peer here is a listening socket on 127.0.0.1 served by a thread, which reads each request and
then answers, stalls, drops the connection or breaks the reply. ``transport.post`` is called as the
gateway calls it; nothing of urllib3 is mocked. The rule under test: a failure that provably never
reached the processor is ERROR (``sent`` false), one that may have is UNKNOWN (``sent`` true).
"""

from __future__ import annotations

import base64
import gzip
import os
import pathlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import certifi
import pytest
import requests

from payments.gateways.authorize_net import transport
from payments.gateways.authorize_net.config import AuthorizeNetConfig
from payments.gateways.authorize_net.transport import NoReply, post

NS = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
DOCUMENT = (
    f'<?xml version="1.0" encoding="utf-8"?><getTransactionDetailsResponse xmlns="{NS}">'
    "<messages><resultCode>Ok</resultCode></messages></getTransactionDetailsResponse>"
).encode()
REQUEST = b'<?xml version="1.0" encoding="utf-8"?><getTransactionDetailsRequest/>'


def reply(status: int = 200, body: bytes = DOCUMENT, *headers: str, length: int | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/xml; charset=utf-8", *headers]
    head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Answer = Callable[[socket.socket, bytes], bool]  # (connection, request) -> keep the connection open


class Peer:
    """A local HTTP peer: reads each request (head and Content-Length body), then runs ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        self.released = threading.Event()  # set at teardown: stalled answers give up
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xml/v1/request.api"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, rest = buffer.split(b"\r\n\r\n", 1)
                    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                    length = int(lengths[0].split(b":")[1]) if lengths else 0
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buffer = rest[length:]
                    if not self.answer(conn, self.requests[-1]):
                        return
            except OSError:
                return

    def close(self) -> None:
        self.released.set()
        self.listener.close()
        for conn in self._open:
            conn.close()


@pytest.fixture
def peer() -> Iterator[Callable[[Answer], Peer]]:
    peers: list[Peer] = []

    def start(answer: Answer) -> Peer:
        peers.append(Peer(answer))
        return peers[-1]

    yield start
    for each in peers:
        each.close()


def answering(data: bytes, *, keep: bool = True) -> Answer:
    def answer(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(data)
        return keep

    return answer


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No proxy and no CA bundle from the machine's environment: each test sets what it tests."""
    for name in transport._TRANSPORT_ENV:
        monkeypatch.delenv(name, raising=False)


def config(endpoint: str, *, connect_timeout: float = 1.0, read_timeout: float = 1.0) -> AuthorizeNetConfig:
    return AuthorizeNetConfig(
        api_login_id="login",
        transaction_key="key",
        endpoint=endpoint,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def failure(endpoint: str, **timeouts: float) -> NoReply:
    with pytest.raises(NoReply) as raised:
        post(config(endpoint, **timeouts), REQUEST)
    return raised.value


# --- what goes on the wire ---------------------------------------------------------------------------


def test_the_request_is_the_one_requests_sent_byte_for_byte(peer):
    server = peer(answering(reply()))

    root = post(config(server.url), REQUEST)

    assert root.tag == f"{{{NS}}}getTransactionDetailsResponse"
    [sent] = server.requests
    assert sent == (
        b"POST /xml/v1/request.api HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + f"User-Agent: python-requests/{requests.__version__}\r\n".encode()
        + b"Accept-Encoding: gzip, deflate\r\n"
        b"Accept: */*\r\n"
        b"Connection: keep-alive\r\n"
        b"Content-Type: application/xml\r\n"
        b"version: 1.0\r\n"
        b"encoding: utf-8\r\n" + f"Content-Length: {len(REQUEST)}\r\n\r\n".encode() + REQUEST
    )


def test_one_pool_shared_by_threads_keeps_its_connections(peer):
    def slow(conn: socket.socket, request: bytes) -> bool:
        time.sleep(0.02)
        conn.sendall(reply())
        return True

    server = peer(slow)
    results: list[str] = []

    def payer() -> None:
        for _ in range(5):
            results.append(post(config(server.url), REQUEST).tag)

    threads = [threading.Thread(target=payer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    opened = server.connections
    for _ in range(5):
        post(config(server.url), REQUEST)

    assert len(results) == 40
    assert opened <= 8  # at most one connection per concurrent caller, reused across its calls
    assert server.connections == opened  # later calls reuse the pooled connections


def test_cookies_the_processor_sets_are_not_sent_back(peer):
    server = peer(answering(reply(200, DOCUMENT, "Set-Cookie: affinity=node-7; Path=/")))

    post(config(server.url), REQUEST)
    post(config(server.url), REQUEST)

    assert [b"cookie:" in sent.lower() for sent in server.requests] == [False, False]


def test_a_bom_prefixed_reply_is_parsed(peer):
    server = peer(answering(reply(body=b"\xef\xbb\xbf" + DOCUMENT)))

    assert post(config(server.url), REQUEST).tag == f"{{{NS}}}getTransactionDetailsResponse"


def test_a_gzip_reply_is_decoded_as_requests_did(peer):
    server = peer(answering(reply(200, gzip.compress(DOCUMENT), "Content-Encoding: gzip")))

    assert post(config(server.url), REQUEST).tag == f"{{{NS}}}getTransactionDetailsResponse"


def test_a_reply_of_exactly_the_cap_is_read_and_one_byte_more_is_not(peer, monkeypatch):
    monkeypatch.setattr(transport, "REPLY_MAX_BYTES", len(DOCUMENT) + 100)
    padded = DOCUMENT + b" " * 100  # trailing whitespace after the root element is still the document
    server = peer(answering(reply(body=padded)))
    assert post(config(server.url), REQUEST).tag.endswith("getTransactionDetailsResponse")

    over = peer(answering(reply(body=padded + b" ")))
    error = failure(over.url)
    assert (error.code, error.sent) == ("malformed_response", True)
    assert "larger than" in error.message


def test_an_oversize_reply_is_not_read_whole(peer, monkeypatch):
    """A reply that never ends (chunked, a chunk at a time) is given up at the cap, not read to its end."""
    monkeypatch.setattr(transport, "REPLY_MAX_BYTES", 1 << 20)

    def endless(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"<" * 65536)
        while not server.released.is_set():
            conn.sendall(chunk)
        return False

    server = peer(endless)
    started = time.monotonic()

    error = failure(server.url)

    assert (error.code, error.sent) == ("malformed_response", True)
    assert time.monotonic() - started < 5


def test_an_unparseable_reply_is_malformed(peer):
    server = peer(answering(reply(body=b"<html>busy</html>")))

    error = failure(server.url)

    assert (error.code, error.sent) == ("malformed_response", True)


# --- HTTP statuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_may_have_been_processed(peer, status):
    server = peer(answering(reply(status, b"oops")))

    error = failure(server.url)

    assert (error.code, error.sent) == ("http_5xx", True)
    assert error.message == f"Authorize.Net answered HTTP {status}"


@pytest.mark.parametrize("status", [400, 404, 405])
def test_a_4xx_is_a_rejection_not_sent(peer, status):
    server = peer(answering(reply(status, b"no")))

    error = failure(server.url)

    assert (error.code, error.sent) == ("http_rejected", False)
    assert error.message == f"Authorize.Net refused the request: HTTP {status}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(peer, status):
    elsewhere = peer(answering(reply()))
    server = peer(answering(reply(status, b"", f"Location: {elsewhere.url}")))

    error = failure(server.url)

    assert (error.code, error.sent) == ("http_rejected", False)
    assert len(server.requests) == 1
    assert elsewhere.requests == []  # the request went nowhere else


def test_a_rejection_does_not_leave_its_unread_body_on_a_reused_connection(peer):
    answers = iter([reply(404, b"x" * 5000), reply()])
    server = peer(lambda conn, request: conn.sendall(next(answers)) or True)

    assert failure(server.url).code == "http_rejected"
    assert post(config(server.url), REQUEST).tag.endswith("getTransactionDetailsResponse")
    assert server.connections == 2  # the rejected reply's connection was closed, not reused half-read


# --- never sent -------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_an_error_not_sent():
    started = time.monotonic()

    error = failure(f"http://127.0.0.1:{closed_port()}/xml/v1/request.api")

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == "Could not connect to Authorize.Net: ConnectionError"
    assert time.monotonic() - started < 1


@pytest.fixture
def unanswered_port():
    """A listener whose accept queue is full: new connections are never established."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    yield listener.getsockname()[1]
    for sock in [*fillers, listener]:
        sock.close()


def test_a_connect_timeout_is_an_error_not_sent(unanswered_port):
    started = time.monotonic()

    error = failure(f"http://127.0.0.1:{unanswered_port}/xml/v1/request.api", connect_timeout=0.2)

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == "Could not connect to Authorize.Net: ConnectTimeout"
    assert 0.2 <= time.monotonic() - started < 1


def test_a_failed_tls_handshake_is_an_error_not_sent():
    """A peer that answers the ClientHello with plain HTTP: the handshake fails before anything is sent."""

    def plain_text(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: plain_text(listener.accept()[0]), daemon=True).start()
    try:
        error = failure(f"https://127.0.0.1:{listener.getsockname()[1]}/xml/v1/request.api")
    finally:
        listener.close()

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == "Could not connect to Authorize.Net: SSLError"


def test_a_tls_error_while_the_reply_is_read_may_have_been_processed():
    """The request went out and a reply began: a retry under a new key could charge twice, so the
    outcome is unknown (reconciled), never "nothing sent". No certificate tooling here for a live TLS
    stream, so the classification is asked directly, with urllib3's own exception."""
    from urllib3.exceptions import SSLError as Urllib3SSLError

    from payments.gateways.authorize_net.transport import _no_reply

    cfg = config("https://127.0.0.1:9/xml/v1/request.api")
    during_body = _no_reply(Urllib3SSLError("decryption failed or bad record mac"), cfg, reading_body=True)
    assert (during_body.code, during_body.sent) == ("connection_lost", True)
    assert during_body.message == "The connection to Authorize.Net broke before a reply: SSLError"
    before_reply = _no_reply(Urllib3SSLError("certificate verify failed"), cfg, reading_body=False)
    assert (before_reply.code, before_reply.sent) == ("connect_failed", False)


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [("api.authorize.net/xml/v1/request.api", "MissingSchema"), ("http:///xml/v1/request.api", "InvalidURL")],
)
def test_an_unusable_endpoint_is_an_error_not_sent(endpoint, name):
    error = failure(endpoint)

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == f"Could not connect to Authorize.Net: {name}"


# --- sent, no reply -----------------------------------------------------------------------------------


def test_a_server_that_never_answers_is_a_read_timeout(peer):
    server = peer(lambda conn, request: server.released.wait(5) and False)
    started = time.monotonic()

    error = failure(server.url, read_timeout=0.3)

    assert (error.code, error.sent) == ("read_timeout", True)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert len(server.requests) == 1  # it was sent, exactly once: no retry


def test_a_connection_dropped_before_the_reply_is_lost_and_not_retried(peer):
    server = peer(lambda conn, request: False)  # reads the request, closes without a word

    error = failure(server.url)

    assert (error.code, error.sent) == ("connection_lost", True)
    assert error.message == "The connection to Authorize.Net broke before a reply: ConnectionError"
    assert len(server.requests) == 1


def test_a_connection_dropped_mid_reply_is_lost(peer):
    server = peer(answering(reply(body=DOCUMENT[:40], length=len(DOCUMENT)), keep=False))

    error = failure(server.url)

    assert (error.code, error.sent) == ("connection_lost", True)
    assert error.message == "The connection to Authorize.Net broke before a reply: ChunkedEncodingError"


def test_a_reply_that_stalls_mid_body_is_lost_as_under_requests(peer):
    """requests reported a read timeout inside the body as a ConnectionError (connection_lost), not read_timeout."""

    def stall(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(reply(body=DOCUMENT[:40], length=len(DOCUMENT)))
        server.released.wait(5)
        return False

    server = peer(stall)

    error = failure(server.url, read_timeout=0.3)

    assert (error.code, error.sent) == ("connection_lost", True)
    assert error.message == "The connection to Authorize.Net broke before a reply: ConnectionError"


def test_a_corrupt_gzip_reply_is_lost_as_under_requests(peer):
    server = peer(answering(reply(200, b"not gzip at all", "Content-Encoding: gzip")))

    error = failure(server.url)

    assert (error.code, error.sent) == ("connection_lost", True)
    assert error.message == "The connection to Authorize.Net broke before a reply: ContentDecodingError"


# --- proxies and the CA bundle from the environment ---------------------------------------------------


def test_http_proxy_is_honoured_with_its_credentials(peer, monkeypatch):
    proxy = peer(answering(reply()))
    monkeypatch.setenv("HTTP_PROXY", f"http://merchant:p%40ss@127.0.0.1:{proxy.port}")

    post(config("http://processor.invalid:8080/xml/v1/request.api"), REQUEST)

    [sent] = proxy.requests
    head = sent.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST http://processor.invalid:8080/xml/v1/request.api HTTP/1.1"  # the absolute URL
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"merchant:p@ss") in head


def test_no_proxy_exempts_the_endpoint(peer, monkeypatch):
    proxy = peer(answering(reply()))
    direct = peer(answering(reply()))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")

    post(config(direct.url), REQUEST)
    assert (len(direct.requests), len(proxy.requests)) == (1, 0)

    monkeypatch.delenv("NO_PROXY")  # the next call sees the changed environment
    post(config(direct.url), REQUEST)
    assert (len(direct.requests), len(proxy.requests)) == (1, 1)
    assert proxy.requests[0].startswith(f"POST {direct.url} HTTP/1.1\r\n".encode())


def test_a_dead_proxy_is_an_error_not_sent(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")

    error = failure("http://processor.invalid/xml/v1/request.api")

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == "Could not connect to Authorize.Net: ProxyError"


@pytest.mark.parametrize(
    ("variable", "proxy", "name"),
    [
        ("HTTP_PROXY", "http://:3128", "InvalidProxyURL"),  # no host
        ("HTTP_PROXY", "ftp://127.0.0.1:21", "InvalidURL"),  # a scheme urllib3 cannot proxy through
        ("ALL_PROXY", "socks5://127.0.0.1:{closed}", "ConnectionError"),  # a dead SOCKS proxy
    ],
)
def test_an_unusable_proxy_is_an_error_not_sent(monkeypatch, variable, proxy, name):
    monkeypatch.setenv(variable, proxy.format(closed=closed_port()))

    error = failure("http://processor.invalid/xml/v1/request.api")

    assert (error.code, error.sent) == ("connect_failed", False)
    assert error.message == f"Could not connect to Authorize.Net: {name}"


def test_tls_is_verified_against_the_bundle_the_environment_names(monkeypatch, tmp_path):
    endpoint = "https://api.authorize.net/xml/v1/request.api"
    pool = transport._route_for(endpoint, transport._environment()).pool
    assert (pool.cert_reqs, pool.ca_certs) == ("CERT_REQUIRED", certifi.where())  # requests' default: certifi

    bundle = tmp_path / "corp-ca.pem"
    bundle.write_bytes(pathlib.Path(certifi.where()).read_bytes())
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    pool = transport._route_for(endpoint, transport._environment()).pool
    assert (pool.cert_reqs, pool.ca_certs) == ("CERT_REQUIRED", str(bundle))

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))  # a directory of certificates; it wins
    pool = transport._route_for(endpoint, transport._environment()).pool
    assert (pool.cert_reqs, pool.ca_cert_dir, pool.ca_certs) == ("CERT_REQUIRED", str(tmp_path), None)


def test_a_missing_ca_bundle_raises_as_requests_did(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))

    with pytest.raises(OSError, match="Could not find a suitable TLS CA certificate bundle"):
        post(config("https://api.authorize.net/xml/v1/request.api"), REQUEST)


def test_a_forked_process_does_not_reuse_the_parents_pooled_connections(peer):
    server = peer(answering(reply()))
    post(config(server.url), REQUEST)
    assert transport._route_for.cache_info().currsize >= 1

    child = os.fork()
    if child == 0:  # the child posts on a connection of its own, then leaves without pytest's teardown
        fresh = transport._route_for.cache_info().currsize == 0
        post(config(server.url), REQUEST)
        os._exit(0 if fresh else 1)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert server.connections == 2
    post(config(server.url), REQUEST)  # the parent's pooled connection is still usable
    assert server.connections == 2
