"""Per-request context (the request id) that logging and audit read without passing it around."""

from __future__ import annotations

import contextvars
import random
import re

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# A client-sent X-Request-ID is used only when it is short and plain (no header injection, no log forging).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


def new_request_id() -> str:
    # An id, not a secret: 96 bits from the process's Mersenne Twister (seeded from the OS, re-seeded in
    # every forked worker) instead of an os.urandom() system call on every request.
    return f"req_{random.getrandbits(96):024x}"


def sane_request_id(value: str | None) -> str | None:
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return None


def current_request_id() -> str | None:
    return request_id_var.get()
