"""Payment reads, always scoped to one merchant (another merchant's id is simply not found)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from core.exceptions import NotFound
from payments.models import Payment


def payment_list(*, merchant_id) -> QuerySet[Payment]:
    return Payment.objects.filter(merchant_id=merchant_id).prefetch_related("refunds")


def payment_get(*, merchant_id, payment_id, using: str = "default") -> Payment:
    """The merchant's payment, or ``NotFound`` for a foreign, unknown or malformed id."""
    try:
        pk = uuid.UUID(str(payment_id))
    except ValueError:
        raise NotFound("No such payment.") from None
    payment = payment_list(merchant_id=merchant_id).using(using).filter(pk=pk).first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment
