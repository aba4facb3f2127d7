"""Cache-aside for ``GET /payments/{id}``: the serialized payment, keyed by merchant and payment.

The merchant is part of the key, so one merchant's cached object can never answer another's
request. Services invalidate after every committed write of the payment; the short TTL bounds
how long a lost invalidation could serve a stale copy.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("easypay.payments")

DEFAULT_TTL_SECONDS = 60


def _ttl() -> int:
    return int(getattr(settings, "PAYMENT_CACHE_SECONDS", DEFAULT_TTL_SECONDS))


def payment_cache_key(*, merchant_id, payment_id) -> str:
    return f"payments:v1:{merchant_id}:{payment_id}"


def payment_cache_get(*, merchant_id, payment_id) -> dict[str, Any] | None:
    return cache.get(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id))


def payment_cache_set(*, merchant_id, payment_id, data: dict[str, Any]) -> None:
    cache.set(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id), data, _ttl())


def payment_cache_invalidate(*, merchant_id, payment_id) -> None:
    try:
        cache.delete(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id))
    except Exception:  # a cache outage must never fail a committed payment write
        logger.warning("payment cache invalidation failed", extra={"payment_id": str(payment_id)})
