"""API key material: generation, the keyed hash that is stored, and parsing of the presented key.

A key is ``<key_id>.<secret>``, e.g. ``ek_test_3f9a0c1d2b4e5f60.Zq...``. The secret has 256 bits of
entropy, so a keyed fast hash (HMAC-SHA256 under ``API_KEY_HASH_KEY``) is the right storage: a slow
password hash buys nothing against brute force here and would cost every request.

``API_KEY_HASH_KEY`` is its own secret (never ``SECRET_KEY``). During a rotation the value being
rotated out is ``API_KEY_HASH_KEY_PREVIOUS``: a secret that matches only under it is still accepted,
and the caller re-hashes the row under the current key (``services.api_key_secret_rehash``).
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


CURRENT = "current"
PREVIOUS = "previous"


def _hash(key: str, secret: str) -> str:
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def hash_secret(secret: str) -> str:
    """The stored form of a secret: always under the current ``API_KEY_HASH_KEY``."""
    return _hash(settings.API_KEY_HASH_KEY, secret)


def secret_match(secret: str, stored_hash: str) -> str | None:
    """``CURRENT`` / ``PREVIOUS``: which hash key the stored hash was made with; ``None``: no match."""
    if hmac.compare_digest(hash_secret(secret), stored_hash):
        return CURRENT
    previous = settings.API_KEY_HASH_KEY_PREVIOUS
    if previous and hmac.compare_digest(_hash(previous, secret), stored_hash):
        return PREVIOUS
    return None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return secret_match(secret, stored_hash) is not None


def full_key(key_id: str, secret: str) -> str:
    return f"{key_id}.{secret}"


def split_key(value: str) -> tuple[str, str] | None:
    """``"<key_id>.<secret>"`` -> ``(key_id, secret)``, or ``None`` when malformed."""
    key_id, sep, secret = value.strip().partition(".")
    if not sep or not KEY_ID_RE.match(key_id) or not SECRET_RE.match(secret):
        return None
    return key_id, secret
