"""Cache-aside for ``GET /payments/{id}``: the serialized payment, keyed by merchant and payment.

The merchant is part of the key, so one merchant's cached object can never answer another's
request. Services invalidate after every committed write of the payment (and at the write). The
cache is leased (``core.cache``): a GET that read the row before a refund committed can never store
that row over the refund.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core.cache import leased_fill, leased_invalidate, leased_read


def payment_cache_key(*, merchant_id, payment_id) -> str:
    return f"payments:v2:{merchant_id}:{payment_id}"


def payment_cache_read(*, merchant_id, payment_id) -> tuple[dict[str, Any] | None, str | None]:
    """``(data, None)`` on a hit; ``(None, lease)`` on a miss (see ``core.cache.leased_read``)."""
    return leased_read(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id))


def payment_cache_fill(*, merchant_id, payment_id, data: dict[str, Any], lease: str | None) -> bool:
    """Store the row read after a miss; refused when the payment was written meanwhile."""
    ttl = int(settings.PAYMENT_CACHE_SECONDS)
    return leased_fill(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id), data, lease=lease, ttl=ttl)


def payment_cache_invalidate(*, merchant_id, payment_id) -> None:
    leased_invalidate(payment_cache_key(merchant_id=merchant_id, payment_id=payment_id))
