"""What the audit trail may keep of a request or response: a deny-list redaction of nested JSON.

Applied recursively to dicts and lists before anything is stored:

- values under secret-bearing keys (passwords, key secrets, tokens, card codes, API-key and
  Authorization headers, signing secrets) are replaced by ``[REDACTED]``;
- card-number-looking digit runs (13-19 digits, Luhn-valid, spaces or dashes allowed, not part of a
  UUID or glued to letters) anywhere in a string are replaced by ``[REDACTED_PAN]``; whole
  card-number fields are dropped to ``[REDACTED]``;
- ``whsec_`` signing secrets, ``ek_..``-style full API keys (``<key_id>.<secret>``) and JWTs found in
  free text are masked too, whatever key they sit under;
- customer personal data (name, email, phone, address) is replaced by a keyed fingerprint
  ``[PII:<10 hex>]``: support can still correlate rows of one customer, but an erasure request
  (GDPR art. 17) leaves nothing readable behind in the append-only trail.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from typing import Any

from django.conf import settings

from core.logging import PAN_CANDIDATE

REDACTED = "[REDACTED]"
REDACTED_PAN = "[REDACTED_PAN]"

# Compared after lower-casing and mapping "-" to "_" (so "X-API-Key" -> "x_api_key").
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "new_password",
        "old_password",
        "secret",
        "key_secret",
        "client_secret",
        "signing_secret",
        "signature_key",
        "transaction_key",
        "transactionkey",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "card_token",
        "payment_nonce",
        "opaque_data",
        "data_value",
        "authorization",
        "proxy_authorization",
        "x_api_key",
        "api_key",
        "http_authorization",
        "http_x_api_key",
        "cookie",
        "set_cookie",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "card_code",
        "cardcode",
        "security_code",
        "card_number",
        "cardnumber",
        "number",
        "pan",
        "account_number",
        "routing_number",
        "expiration_date",
        "exp_month",
        "exp_year",
    }
)
# Any key containing one of these fragments is treated as secret too ("webhook_secret", "x_jwt_token").
SECRET_FRAGMENTS = ("password", "secret", "token", "cvv", "cvc", "card_code", "authorization", "api_key")
# Keys whose value is a secret only when it *looks* like one (``key`` is also an idempotency key's name).
KEY_LIKE = frozenset({"key", "credential", "credentials"})

PII_KEYS = frozenset(
    {
        "customer_email",
        "customer_name",
        "email",
        "first_name",
        "last_name",
        "full_name",
        "phone",
        "phone_number",
        "address",
        "billing_address",
        "shipping_address",
        "street",
        "zip",
        "postal_code",
    }
)

_WHSEC = re.compile(r"whsec_[A-Za-z0-9_\-]{8,}")
_FULL_API_KEY = re.compile(r"\b(ek_(?:test|live)_[0-9a-f]{8,})\.[A-Za-z0-9_\-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
_KEY_LOOKING = re.compile(r"^(?:ek_(?:test|live)_[0-9a-f]{8,}\.\S+|[A-Za-z0-9_\-]{32,}|sk_\S+|whsec_\S+)$")

MAX_DEPTH = 20
_DIGIT = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_pan(match: re.Match) -> str:
    if match.group("uuid"):
        return match.group(0)
    digits = re.sub(r"[ -]", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return REDACTED_PAN
    return match.group(0)


def redact_string(text: str) -> str:
    """Mask card numbers, signing secrets, full API keys, JWTs and bearer credentials inside free text."""
    if not text:
        return text
    if "\x00" in text:  # PostgreSQL stores no NUL in text or jsonb: keep it visible, escaped
        text = text.replace("\x00", "\\u0000")
    if _DIGIT.search(text):  # a card number needs digits (the same \d as PAN_CANDIDATE's)
        text = PAN_CANDIDATE.sub(_mask_pan, text)
    if "whsec_" in text:
        text = _WHSEC.sub(REDACTED, text)
    if "ek_" in text:
        text = _FULL_API_KEY.sub(lambda m: f"{m.group(1)}.{REDACTED}", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _normalize(key: str) -> str:
    return key.strip().lower().replace("-", "_")


# Names that contain a fragment above but hold no secret (ids, timestamps, kinds, counters).
_NOT_SECRET_SUFFIXES = ("_id", "_ids", "_at", "_type", "_count", "_prefix", "_hint", "_expires_in")


def is_secret_key(key: str) -> bool:
    return _names_secret(_normalize(key))


def _key_info(key: str) -> tuple[str, str, bool]:
    """A dict key as stored (NUL escaped), its normalized name, and whether it names a secret."""
    if len(key) > 64:
        return _key_info_of(key)
    return _cached_key_info(key)


def _key_info_of(key: str) -> tuple[str, str, bool]:
    escaped = key.replace("\x00", "\\u0000")
    name = _normalize(escaped)
    return escaped, name, _names_secret(name)


# The same few dozen keys come back in every request: each is worked out once per process. Bounded in
# number and in length (a client sending new or huge keys each time only evicts old ones).
_cached_key_info = functools.lru_cache(maxsize=2048)(_key_info_of)


def _names_secret(name: str) -> bool:
    if name in SECRET_KEYS:
        return True
    if name.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return any(fragment in name for fragment in SECRET_FRAGMENTS)


def pii_fingerprint(value: Any) -> str:
    """A stable keyed fingerprint of a personal value: equal inputs give equal tags, none is reversible."""
    text = str(value).strip().lower().encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), b"audit-pii:" + text, hashlib.sha256).hexdigest()
    return f"[PII:{digest[:10]}]"


def redact(value: Any, *, keep_pii: bool = False, _depth: int = 0) -> Any:
    """A redacted copy of ``value`` (dicts, lists, tuples, scalars); the input is not modified.

    ``keep_pii=True`` masks secrets and card data only (a GDPR export returns the subject's own data).
    """
    if _depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for raw_key, item in value.items():
            key, name, secret = _key_info(raw_key if type(raw_key) is str else str(raw_key))
            if item is None or item == "":
                out[key] = item
            elif secret or (name in KEY_LIKE and isinstance(item, str) and _KEY_LOOKING.match(item)):
                out[key] = REDACTED
            elif not keep_pii and name in PII_KEYS and isinstance(item, str | int):
                out[key] = pii_fingerprint(item)
            else:
                out[key] = redact(item, keep_pii=keep_pii, _depth=_depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, keep_pii=keep_pii, _depth=_depth + 1) for item in value]
    if isinstance(value, str):
        return redact_string(value)
    if isinstance(value, int) and not isinstance(value, bool) and 13 <= len(str(abs(value))) <= 19:
        # A card number sent as a JSON number.
        return REDACTED_PAN if luhn_valid(str(abs(value))) else value
    return value
