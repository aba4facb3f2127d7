"""API key material: generation, the keyed hash that is stored, and parsing of the presented key.

A key is ``<key_id>.<secret>``, e.g. ``ek_test_3f9a0c1d2b4e5f60.Zq...``. The secret has 256 bits of
entropy, so a keyed fast hash (HMAC-SHA256 under ``API_KEY_HASH_KEY``) is the right storage: a slow
password hash buys nothing against brute force here and would cost every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.conf import settings

KEY_ID_RE = re.compile(r"^ek_(test|live)_[0-9a-f]{16}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_\-]{43}$")


def new_key_id(mode: str) -> str:
    return f"ek_{mode}_{secrets.token_hex(8)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    key = (getattr(settings, "API_KEY_HASH_KEY", None) or settings.SECRET_KEY).encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def full_key(key_id: str, secret: str) -> str:
    return f"{key_id}.{secret}"


def split_key(value: str) -> tuple[str, str] | None:
    """``"<key_id>.<secret>"`` -> ``(key_id, secret)``, or ``None`` when malformed."""
    key_id, sep, secret = value.strip().partition(".")
    if not sep or not KEY_ID_RE.match(key_id) or not SECRET_RE.match(secret):
        return None
    return key_id, secret
