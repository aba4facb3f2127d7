"""Payment reads, always scoped to one merchant (another merchant's id is simply not found)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db.models import QuerySet

from core.errors import NotFound
from payments.models import Payment, Refund

# Refunds asked of the processor and not yet known to have failed: their amount is reserved.
REFUNDS_IN_FLIGHT = (Refund.Status.PENDING, Refund.Status.UNKNOWN)


def payment_list(*, merchant_id) -> QuerySet[Payment]:
    """The merchant's payments, refunds not loaded: a page's refunds are read in one query by
    ``payments.payloads.payments_payload`` (a prefetch costs ~1.5 ms more per page, one queryset per payment)."""
    return Payment.objects.filter(merchant_id=merchant_id)


def payment_get(*, merchant_id, payment_id, using: str = "default") -> Payment:
    """The merchant's payment, or ``NotFound`` for a foreign, unknown or malformed id."""
    try:
        pk = uuid.UUID(str(payment_id))
    except ValueError:
        raise NotFound("No such payment.") from None
    payment = payment_list(merchant_id=merchant_id).using(using).filter(pk=pk).prefetch_related("refunds").first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def payment_refundable_amount(*, payment: Payment) -> Decimal:
    """What is left to refund: captured, less refunded, less the refunds in flight; never negative.

    Reads ``payment.refunds`` (its prefetch when there is one). ``refund_create`` calls it on the
    row it has just locked, so there the read is fresh and the answer is the one that counts.
    """
    reserved = sum((r.amount for r in payment.refunds.all() if r.status in REFUNDS_IN_FLIGHT), Decimal(0))
    return max(payment.captured_amount - payment.refunded_amount - reserved, Decimal(0))


def payment_possible_operations(*, payment: Payment) -> set[str]:
    """What may be asked of ``payment`` in its recorded state: a subset of {"capture", "void",
    "refund"}. For showing buttons only; the services decide (under the row lock, and the processor
    may still refuse, e.g. a void of a capture it has settled meanwhile)."""
    from payments.models import PaymentStatus

    if payment.pending_operation:
        return set()
    reserved = any(r.status in REFUNDS_IN_FLIGHT for r in payment.refunds.all())
    possible = set()
    if payment.status == PaymentStatus.AUTHORIZED:
        possible |= {"capture", "void"}
    elif payment.status == PaymentStatus.HELD or (
        payment.status == PaymentStatus.CAPTURED and payment.settled_at is None and not reserved
    ):
        possible.add("void")
    if (
        payment.status in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED)
        and payment_refundable_amount(payment=payment) > 0
    ):
        possible.add("refund")
    return possible
