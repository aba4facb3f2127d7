"""Talking to a server on loopback: one request on a fresh connection (``http_request``, never raising:
a transport failure is a ``Reply`` with status 0), and waiting for a condition (``wait_until``).
Standard library only, like ``scripts/processes.py``: ``scripts/cluster.py`` uses it too."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, else the text
    raw: bytes
    headers: dict[str, str]
    elapsed: float
    error: str | None = None  # transport failure (status 0)

    @property
    def is_json(self) -> bool:
        return "application/json" in self.headers.get("content-type", "")

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None


def http_request(
    port: int, method: str, path: str, body: Any = None, headers: dict | None = None, timeout: float = 30
) -> Reply:
    """One request on a fresh connection. A transport failure is a Reply with status 0 and ``error``."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(resp.status, parsed, raw, resp_headers, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(0, None, b"", {}, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
