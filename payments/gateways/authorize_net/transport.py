"""The HTTP transport to Authorize.Net: one pooled session per thread, explicit timeouts, no redirects.

What the SDK's ``APIOperationBase.execute()`` gets wrong for a payment server (a class-wide endpoint
that threads race on, no timeout, proxies that bypass ``no_proxy``, a reply decoded as ISO-8859-1 with
three characters dropped) is replaced here: the request is POSTed with a per-thread
``requests.Session`` (proxies from the environment honour ``no_proxy``, and ``REQUESTS_CA_BUNDLE``
works: see :func:`transport_settings`) with ``timeout=(connect, read)`` on every call and no redirects
or retries; the UTF-8 BOM is stripped and the reply parsed (:mod:`.replies`). Failures are classified
by whether the request can have reached the processor (see ``base.py``).
"""

from __future__ import annotations

import codecs
import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

import requests
from authorizenet.constants import constants as sdk_constants
from lxml import etree
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ..base import (
    ERROR_CONNECT,
    ERROR_HTTP_REJECTED,
    UNKNOWN_CONNECTION_LOST,
    UNKNOWN_HTTP_5XX,
    UNKNOWN_MALFORMED,
    UNKNOWN_READ_TIMEOUT,
)
from .config import AuthorizeNetConfig
from .replies import Node, parse

# The largest reply read (a page of 1000 transactions is well under 1 MB); a longer one is not parsed.
REPLY_MAX_BYTES = 8 * 1024 * 1024

_thread_local = threading.local()


def _session() -> requests.Session:
    """One Session (and connection pool) per thread: requests does not promise Session thread-safety.

    ``trust_env`` is off: with it on, requests scans the whole environment for proxies and looks for a
    ``.netrc`` on every call (0.5 ms of a 7 ms payment). What it would have found is worked out once
    per endpoint and environment by :func:`transport_settings` and passed explicitly instead.
    """
    session = getattr(_thread_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False
        adapter = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=2)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _thread_local.session = session
    return session


# The environment variables requests would consult for a call: proxies (``no_proxy`` honoured) and the
# CA bundle. Their values are the cache key, so a changed environment is seen on the next call.
_TRANSPORT_ENV = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@functools.lru_cache(maxsize=16)
def _transport_settings_for(endpoint: str, environment: tuple[str | None, ...]) -> tuple[dict[str, str], str | bool]:
    proxies = requests.utils.get_environ_proxies(endpoint)  # empty when no_proxy exempts the endpoint
    values = dict(zip(_TRANSPORT_ENV, environment, strict=True))
    verify = values["REQUESTS_CA_BUNDLE"] or values["CURL_CA_BUNDLE"] or True
    return proxies, verify


def transport_settings(endpoint: str) -> tuple[dict[str, str], str | bool]:
    """(proxies, verify) exactly as ``trust_env`` would give them for ``endpoint``."""
    return _transport_settings_for(endpoint, tuple(os.environ.get(name) for name in _TRANSPORT_ENV))


class NoReply(Exception):
    """No usable reply. ``sent`` says whether the request can have reached the processor."""

    def __init__(self, code: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sent = sent


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend(item.args)
        stack.extend((getattr(item, "reason", None), item.__cause__, item.__context__))


def _nothing_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never left: connection refused, DNS, TLS handshake, connect timeout."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    return any(isinstance(e, NewConnectionError | ConnectTimeoutError) for e in _exception_chain(exc))


def _read_capped(http: requests.Response) -> bytes | None:
    """The reply's body, or None when it is longer than ``REPLY_MAX_BYTES`` (not read further)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in http.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > REPLY_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def post(config: AuthorizeNetConfig, payload: bytes) -> Node:
    """POST one request document and parse the reply, or raise :class:`NoReply`."""
    try:
        proxies, verify = transport_settings(config.endpoint)
        http = _session().post(
            config.endpoint,
            data=payload,
            headers=sdk_constants.headers,
            timeout=(config.connect_timeout, config.read_timeout),
            allow_redirects=False,
            proxies=proxies,
            verify=verify,
            stream=True,
        )
        try:
            body = _read_capped(http) if http.status_code < 300 else b""
        finally:
            http.close()
    except requests.exceptions.ReadTimeout:
        raise NoReply(
            UNKNOWN_READ_TIMEOUT,
            f"No reply from Authorize.Net within {config.read_timeout:g}s; the request may have been processed",
            sent=True,
        )
    except requests.RequestException as exc:
        if _nothing_sent(exc):
            raise NoReply(ERROR_CONNECT, f"Could not connect to Authorize.Net: {type(exc).__name__}", sent=False)
        raise NoReply(
            UNKNOWN_CONNECTION_LOST,
            f"The connection to Authorize.Net broke before a reply: {type(exc).__name__}",
            sent=True,
        )
    if http.status_code >= 500:
        raise NoReply(UNKNOWN_HTTP_5XX, f"Authorize.Net answered HTTP {http.status_code}", sent=True)
    if http.status_code >= 300:
        raise NoReply(ERROR_HTTP_REJECTED, f"Authorize.Net refused the request: HTTP {http.status_code}", sent=False)
    if body is None:
        raise NoReply(UNKNOWN_MALFORMED, f"Authorize.Net's reply is larger than {REPLY_MAX_BYTES} bytes", sent=True)
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    try:
        return parse(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise NoReply(
            UNKNOWN_MALFORMED, f"Authorize.Net's reply could not be parsed: {type(exc).__name__}", sent=True
        ) from None
