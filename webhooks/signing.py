"""Webhook signatures: Authorize.Net's inbound ``X-ANET-Signature`` and EasyPay's outbound
``EasyPay-Signature`` (CONTRACT section 5)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

ANET_PREFIX = "sha512="


def anet_signature(body: bytes, key: str) -> str:
    """Upper-case hex HMAC-SHA512 of the raw body, keyed with the signature key's literal text
    (not hex-decoded), as Authorize.Net computes it."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha512).hexdigest().upper()


def anet_signature_header(body: bytes, key: str) -> str:
    return ANET_PREFIX + anet_signature(body, key)


def anet_signature_valid(body: bytes, header: str | None, key: str) -> bool:
    """``header`` is ``sha512=<hex>``: prefix and hex compared case-insensitively, in constant time.

    Missing, empty, wrong prefix, truncated or non-hex values are all simply invalid; the raw bytes are
    used as received, never re-serialised.
    """
    if not header or not key:
        return False
    value = header.strip()
    if value[: len(ANET_PREFIX)].lower() != ANET_PREFIX:
        return False
    received = value[len(ANET_PREFIX) :].strip().lower()
    expected = anet_signature(body, key).lower()
    # compare_digest needs ASCII; anything else cannot be a valid hex digest.
    if not received.isascii():
        return False
    return hmac.compare_digest(received.encode("ascii"), expected.encode("ascii"))


def easypay_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<t>.<raw body>"`` under the endpoint secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def easypay_signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<sig>[,v1=<sig under the previous secret during a rotation>]``."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={easypay_signature(secret, timestamp, body)}" for secret in secrets if secret)
    return ",".join(parts)
