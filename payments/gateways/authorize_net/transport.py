"""The HTTP transport to Authorize.Net: urllib3 connection pools shared by the threads, explicit timeouts, no redirects.

What the SDK's ``APIOperationBase.execute()`` gets wrong for a payment server (a class-wide endpoint
that threads race on, no timeout, proxies that bypass ``no_proxy``, a reply decoded as ISO-8859-1 with
three characters dropped) is replaced here: the request is POSTed through one urllib3 connection pool
per endpoint and environment (:func:`_route_for`; urllib3 pools are thread-safe, so the gunicorn
threads share it) with ``Timeout(connect, read)`` on every call, no retries and no redirects followed;
the reply is read in pieces up to :data:`REPLY_MAX_BYTES`, the UTF-8 BOM stripped and the document
parsed (:mod:`.replies`). Failures are classified by whether the request can have reached the
processor (see ``base.py``).

urllib3 is called directly because ``requests.Session.request`` (preparing the request, merging the
settings, the adapter, the Response around urllib3's) cost about 0.6 ms of CPU per payment out of
7.7 ms for a whole POST /payments in the web process. Against a local server returning a 1 KB reply,
one ``post()`` (reply parsed) took 353 us of CPU through requests and 164 us through the pool
(process_time over 10 alternated rounds of 2000 calls). Everything requests did is kept:

* the same bytes on the wire: requests' default headers (its User-Agent, ``Accept-Encoding: gzip,
  deflate``, ``Accept``, ``Connection``), then the SDK's (``Content-Type: application/xml``,
  ``version``, ``encoding``), then ``Content-Length``, in that order;
* the proxies (``no_proxy`` honoured) and the CA bundle (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``,
  else certifi's, as requests uses) that requests would take from the environment, worked out with
  requests' own helpers once per endpoint and environment (:func:`transport_settings`), never per call;
* each failure given the code, and in its message the exception name, that it had under requests
  (:func:`_no_reply`): payments record that message.

Not kept: the cookie jar of requests' Session, through which each thread sent back whatever cookies
the processor had set on its earlier replies. The XML API is stateless (every request carries its
credentials), so no cookie is stored or sent.
"""

from __future__ import annotations

import codecs
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import certifi
import requests
import urllib3
from authorizenet.constants import constants as sdk_constants
from lxml import etree
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, parse_url

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
_READ_CHUNK = 65536

# Connections kept per endpoint and process: enough for every call in flight at once, or each one beyond
# opens a connection of its own and closes it after use (block=False: nobody waits for a slot). A gthread
# worker has 16 threads, a gevent worker hundreds of greenlets: at 128 clients and a 300 ms processor,
# 16 kept connections meant a new TCP connection (and a new emulator thread) for most calls.
POOL_MAXSIZE = 128

# The headers requests sent, in its order: its session defaults, then the SDK's (Content-Length follows).
_HEADERS: dict[str, str] = {**requests.utils.default_headers(), **sdk_constants.headers}

# Never retried (a retried charge could be a second charge), redirects returned, not followed. With
# ``total=False`` urllib3 raises the error itself instead of a MaxRetryError around it.
_NO_RETRIES = Retry(total=False, redirect=False)


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
    """(proxies, verify) exactly as requests' ``trust_env`` would give them for ``endpoint``."""
    return _transport_settings_for(endpoint, _environment())


def _environment() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in _TRANSPORT_ENV)


@dataclass(frozen=True)
class _Route:
    """Where a POST to one endpoint goes: the pool (to the endpoint, or to its HTTP proxy) and the
    request target on the request line (the path, or the absolute URL when an HTTP proxy forwards it)."""

    manager: urllib3.PoolManager  # owns the pool
    pool: urllib3.HTTPConnectionPool
    target: str


@functools.lru_cache(maxsize=16)
def _route_for(endpoint: str, environment: tuple[str | None, ...]) -> _Route:
    """The pool and target for ``endpoint`` as requests' HTTPAdapter chose them, built once per endpoint
    and environment. Raises what requests raised for a URL or proxy it could not use."""
    proxies, verify = _transport_settings_for(endpoint, environment)
    prepared = requests.PreparedRequest()
    prepared.prepare_url(endpoint, None)  # MissingSchema, InvalidURL; normalised as requests sent it
    url = prepared.url or ""
    if not url.lower().startswith(("http://", "https://")):
        raise requests.exceptions.InvalidSchema(f"No connection adapters were found for {url!r}")
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    pool_kwargs: dict[str, Any] = {}
    ca = certifi.where() if verify is True else str(verify)
    if scheme == "https":
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ca_cert_dir" if os.path.isdir(ca) else "ca_certs"] = ca
    target = prepared.path_url
    proxy = requests.utils.select_proxy(url, proxies)
    manager: urllib3.PoolManager
    try:
        if proxy:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
            if not parse_url(proxy).host:
                raise requests.exceptions.InvalidProxyURL(
                    "Please check proxy URL. It is malformed and could be missing the host."
                )
            manager = _proxy_manager(proxy)
            if scheme != "https" and not proxy.lower().startswith("socks"):
                target = requests.utils.urldefragauth(url)  # an HTTP proxy forwards an absolute URL
        else:
            manager = urllib3.PoolManager(num_pools=2, maxsize=POOL_MAXSIZE, block=False)
        pool = manager.connection_from_host(parsed.hostname, parsed.port, scheme, pool_kwargs=pool_kwargs)
    except requests.RequestException:
        raise
    except (LocationValueError, ValueError) as exc:  # ProxySchemeUnknown, a port out of range...
        raise requests.exceptions.InvalidURL(exc) from exc
    if scheme == "https" and not os.path.exists(ca):  # requests checked it after choosing the pool
        raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {ca}")
    return _Route(manager, pool, target)


# A forked process (a Celery prefork child, a gunicorn worker of a preloaded app) must not share the
# parent's pooled sockets: it opens its own.
os.register_at_fork(after_in_child=_route_for.cache_clear)


def _proxy_manager(proxy: str) -> urllib3.PoolManager:
    username, password = requests.utils.get_auth_from_url(proxy)
    if proxy.lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.") from None
        return SOCKSProxyManager(
            proxy, username=username, password=password, num_pools=2, maxsize=POOL_MAXSIZE, block=False
        )
    auth = urllib3.util.make_headers(proxy_basic_auth=f"{username}:{password}")["proxy-authorization"]
    headers = {"Proxy-Authorization": auth} if username else {}
    return urllib3.ProxyManager(proxy, proxy_headers=headers, num_pools=2, maxsize=POOL_MAXSIZE, block=False)


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


def _connect_failed(exc: BaseException) -> bool:
    """A connection that was never established somewhere in the chain (refused, DNS, connect timeout)."""
    return any(isinstance(e, NewConnectionError | ConnectTimeoutError) for e in _exception_chain(exc))


def _no_reply(exc: Exception, config: AuthorizeNetConfig, *, reading_body: bool) -> NoReply:
    """The failure as it was classified under requests, named after the exception requests raised for it.

    While sending and waiting for the reply's head (``reading_body`` false) requests' adapter raised
    ReadTimeout for a read timeout, ConnectTimeout for a connect timeout, ProxyError, SSLError (the TLS
    handshake), and ConnectionError for the rest; while reading the body its ``iter_content`` raised
    ChunkedEncodingError for a broken connection, ContentDecodingError for a bad gzip stream,
    ConnectionError for a read timeout and SSLError. ConnectTimeout and SSLError were "nothing sent",
    and so was any error with a connection never established in its chain. One change from requests:
    an SSLError while the body is read is "may have been processed" (requests called it nothing sent,
    which would let a retry charge twice).
    """
    if isinstance(exc, ReadTimeoutError) and not reading_body:
        return NoReply(
            UNKNOWN_READ_TIMEOUT,
            f"No reply from Authorize.Net within {config.read_timeout:g}s; the request may have been processed",
            sent=True,
        )
    if isinstance(exc, requests.RequestException):  # from _route_for: the URL or proxy is unusable
        unusable = requests.exceptions.InvalidURL | requests.exceptions.MissingSchema  # InvalidSchema is not
        name, nothing_sent = type(exc).__name__, isinstance(exc, unusable)
    elif reading_body:  # the request went out and a reply began: whatever broke, it may have been processed
        name = "ChunkedEncodingError" if isinstance(exc, ProtocolError) else "ConnectionError"
        name = "SSLError" if isinstance(exc, SSLError) else name
        name = "ContentDecodingError" if isinstance(exc, DecodeError) else name
        nothing_sent = False
    elif isinstance(exc, SSLError):  # before any reply: the TLS handshake, before the request is sent
        name, nothing_sent = "SSLError", True
    elif isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        name, nothing_sent = "ConnectTimeout", True
    else:
        name, nothing_sent = "ProxyError" if isinstance(exc, ProxyError) else "ConnectionError", False
    if nothing_sent or _connect_failed(exc):
        return NoReply(ERROR_CONNECT, f"Could not connect to Authorize.Net: {name}", sent=False)
    return NoReply(UNKNOWN_CONNECTION_LOST, f"The connection to Authorize.Net broke before a reply: {name}", sent=True)


def _read_capped(http: urllib3.BaseHTTPResponse) -> bytes | None:
    """The reply's body (decoded), or None when it is longer than ``REPLY_MAX_BYTES`` (not read further)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in http.stream(_READ_CHUNK, decode_content=True):
        size += len(chunk)
        if size > REPLY_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def post(config: AuthorizeNetConfig, payload: bytes) -> Node:
    """POST one request document and parse the reply, or raise :class:`NoReply`."""
    try:
        route = _route_for(config.endpoint, _environment())
    except requests.RequestException as exc:  # not requests' OSError for a missing CA bundle: that propagates
        raise _no_reply(exc, config, reading_body=False)
    try:
        http = route.pool.urlopen(
            "POST",
            route.target,
            body=payload,
            headers={**_HEADERS, "Content-Length": str(len(payload))},
            retries=_NO_RETRIES,
            redirect=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            preload_content=False,
            decode_content=False,
            chunked=False,
        )
    except (HTTPError, OSError) as exc:
        raise _no_reply(exc, config, reading_body=False)
    status = http.status
    consumed = False
    try:
        body = _read_capped(http) if status < 300 else b""
        consumed = body is not None and status < 300
    except HTTPError as exc:
        raise _no_reply(exc, config, reading_body=True)
    finally:
        if not consumed:
            http.close()  # the rest of the reply is not read: the connection is not reused
        http.release_conn()
    if status >= 500:
        raise NoReply(UNKNOWN_HTTP_5XX, f"Authorize.Net answered HTTP {status}", sent=True)
    if status >= 300:
        raise NoReply(ERROR_HTTP_REJECTED, f"Authorize.Net refused the request: HTTP {status}", sent=False)
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
