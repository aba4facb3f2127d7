"""One outbound webhook POST, pinned to the address the SSRF guard checked.

urllib3 is used directly so the connection goes to that exact IP while TLS still verifies the
certificate against the URL's host name (SNI + hostname check). No redirects, no retries here (the
delivery schedule retries), and at most ``MAX_RESPONSE_BYTES`` of the answer are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import certifi
import urllib3

from . import urlguard

MAX_RESPONSE_BYTES = 1024


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    response_body: str
    error: str
    latency_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pool(target: urlguard.Target, address: str, timeout: float):
    kwargs = {
        "timeout": urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **kwargs,
        )
    return urllib3.HTTPConnectionPool(address, target.port, **kwargs)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 prefixes the pool's repr (the pinned IP); keep only the cause.
    return type(exc).__name__ + (": " + text.split(": ", 1)[-1] if text else "")


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> SendResult:
    """POST ``body``; never raises for network trouble or a refused destination (see ``error``)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target, addresses = urlguard.destination_for_delivery(url)
    except urlguard.UnsafeURL as exc:
        return SendResult(None, "", f"destination refused: {exc}", elapsed())
    result = None
    for address in addresses[:MAX_ADDRESSES]:
        result = _post_to(target, address, body, headers, timeout, elapsed)
        if not result.error.startswith(CONNECT_FAILED):
            break  # an answer, a timeout after connecting, or a refusal: do not try another address
    return result


CONNECT_FAILED = "connection failed"
MAX_ADDRESSES = 4


def _post_to(target, address, body, headers, timeout, elapsed) -> SendResult:
    pool = _pool(target, address, timeout)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            raw = response.read(MAX_RESPONSE_BYTES, decode_content=True) or b""
        except urllib3.exceptions.HTTPError:
            raw = b""
        finally:
            response.close()
        text = raw[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")[:MAX_RESPONSE_BYTES]
        return SendResult(response.status, text, "", elapsed())
    except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass: test it first
        return SendResult(None, "", f"{CONNECT_FAILED}: {_reason(exc)}", elapsed())
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        return SendResult(None, "", f"timed out after {timeout:g} s", elapsed())
    except urllib3.exceptions.HTTPError as exc:  # after connecting: the request may have arrived
        return SendResult(None, "", f"request failed: {_reason(exc)}", elapsed())
    except OSError as exc:
        return SendResult(None, "", f"request failed: {type(exc).__name__}", elapsed())
    finally:
        pool.close()
