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


def payment_possible_operations(*, payment: Payment) -> set[str]:
    """What may be asked of ``payment`` in its recorded state: a subset of {"capture", "void",
    "refund"}. For showing buttons only; the services decide (under the row lock, and the processor
    may still refuse, e.g. a void of a capture it has settled meanwhile)."""
    from payments.models import PaymentStatus as S
    from payments.models import Refund

    if payment.pending_operation:
        return set()
    refunds = list(payment.refunds.all())
    reserved = sum(r.amount for r in refunds if r.status in (Refund.Status.PENDING, Refund.Status.UNKNOWN))
    possible = set()
    if payment.status == S.AUTHORIZED:
        possible |= {"capture", "void"}
    elif payment.status == S.HELD or (payment.status == S.CAPTURED and payment.settled_at is None and not reserved):
        possible.add("void")
    if (
        payment.status in (S.CAPTURED, S.PARTIALLY_REFUNDED)
        and payment.captured_amount - payment.refunded_amount - reserved > 0
    ):
        possible.add("refund")
    return possible
