"""Shared internals of the payment services: locking, the state transition (log + outbox event), the
processor-reply records, and the settings the reconciliation steps read.

Every function here runs inside the caller's transaction unless it says otherwise; ``lock_payment``
is the one way a service takes the payment's row lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Sum
from django.utils import timezone
from prometheus_client import Counter

from payments.cache import payment_cache_invalidate
from payments.events import EVENT_FOR_STATUS
from payments.gateways import (
    GatewayError,
    GatewayResult,
    TransactionDetails,
    TransactionState,
    get_gateway,
)
from payments.models import Payment, PaymentEvent, PaymentStatus, PendingOperation, Refund
from payments.payloads import payment_payload
from webhooks.services import event_record

logger = logging.getLogger("easypay.payments")


def connections_release() -> None:
    """Before a call to the processor (made outside any transaction: never hold a lock or an open
    transaction across it), hand this thread's database connections back to their pool.

    With a connection pool (``DB_POOL_SIZE``; Django's ``OPTIONS["pool"]``) a request otherwise keeps its
    connection until it ends, processor call included: a 300 ms processor then caps the payments in
    flight at the pool's size. Handed back, a connection serves other requests while this one waits,
    and the next query takes one from the pool again (no reconnect). Without a pool (persistent
    per-thread connections) nothing is released: closing would mean reconnecting.
    """
    for connection in connections.all(initialized_only=True):
        pooled = "pool" in connection.settings_dict.get("OPTIONS", {})
        if pooled and connection.connection is not None and not connection.in_atomic_block:
            connection.close()


PAYMENTS_TOTAL = Counter("easypay_payments_total", "Payments reaching a status, by status", ["status"])


# What reconciliation may move a payment to, given the processor's view. Never backwards: a
# refunded payment is not "re-captured", a voided one is not revived. A payment we marked failed
# because the processor seemed not to have it is corrected if the processor does have it.
REFRESH_TRANSITIONS: dict[str, set[str]] = {
    PaymentStatus.PENDING: {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURED,
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
        PaymentStatus.HELD,
        PaymentStatus.VOIDED,
    },
    PaymentStatus.FAILED: {PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.HELD},
    PaymentStatus.HELD: {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURED,
        PaymentStatus.DECLINED,
        PaymentStatus.VOIDED,
        PaymentStatus.FAILED,
    },
    PaymentStatus.AUTHORIZED: {PaymentStatus.CAPTURED, PaymentStatus.VOIDED},
    PaymentStatus.CAPTURED: {PaymentStatus.VOIDED},
}


# The processor's view of a transaction -> our status (a refund or an unhandled state maps to none).
STATUS_FOR_STATE = {
    TransactionState.AUTHORIZED: PaymentStatus.AUTHORIZED,
    TransactionState.CAPTURED: PaymentStatus.CAPTURED,
    TransactionState.VOIDED: PaymentStatus.VOIDED,
    TransactionState.EXPIRED: PaymentStatus.VOIDED,
    TransactionState.DECLINED: PaymentStatus.DECLINED,
    TransactionState.HELD: PaymentStatus.HELD,
    TransactionState.FAILED: PaymentStatus.FAILED,
}


MONEY_STATUSES = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def reconcile_after_seconds() -> int:
    return settings.PAYMENTS_RECONCILE_AFTER_SECONDS


def reconcile_grace_seconds() -> int:
    return settings.PAYMENTS_RECONCILE_GRACE_SECONDS


def lock_payment(payment_id) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def after_commit(payment: Payment, statuses: list[str] | None = None, *, invalidate_now: bool = True) -> None:
    """Drop the payment's cache entry (with its lease) once the transaction commits; count statuses.

    The drop after commit alone keeps every reader outside this transaction fresh: a reader that read
    the old row fills only while its lease lives, and the drop deletes entry and lease together. By
    default the entry is also dropped now, for reads later in this same transaction (or in one whose
    commit hooks never run, as a test's wrapping transaction); ``invalidate_now=False`` spares that
    round trip where nothing reads the payment through the cache before the commit.
    """
    merchant_id, payment_id = payment.merchant_id, payment.pk
    if invalidate_now:
        payment_cache_invalidate(merchant_id=merchant_id, payment_id=payment_id)

    def run() -> None:
        payment_cache_invalidate(merchant_id=merchant_id, payment_id=payment_id)
        for status in statuses or []:
            PAYMENTS_TOTAL.labels(status=status).inc()

    transaction.on_commit(run)


def log_entry(
    payment: Payment, kind: str, *, request=None, response=None, from_status="", to_status=""
) -> PaymentEvent:
    return PaymentEvent(
        payment=payment,
        kind=kind,
        request_data=request or {},
        response_data=response or {},
        from_status=from_status,
        to_status=to_status,
    )


def log_write(payment: Payment, kind: str, *, request=None, response=None, from_status="", to_status="") -> None:
    log_entry(payment, kind, request=request, response=response, from_status=from_status, to_status=to_status).save()


def result_data(result: GatewayResult) -> dict[str, Any]:
    return {
        "outcome": str(result.outcome),
        "transaction_id": result.transaction_id,
        "response_code": result.response_code,
        "reason_code": result.reason_code,
        "message": result.message,
        "error_code": result.error_code,
        "auth_code": result.auth_code,
        "avs_result": result.avs_result,
        "cvv_result": result.cvv_result,
        "card_last_four": result.card_last_four,
        "card_brand": result.card_brand,
    }


def details_data(details: TransactionDetails | None) -> dict[str, Any]:
    if details is None:
        return {"found": False}
    return {
        "found": True,
        "transaction_id": details.transaction_id,
        "status": details.status,
        "transaction_type": details.transaction_type,
        "response_code": details.response_code,
        "reason_code": details.reason_code,
        "auth_amount": str(details.auth_amount) if details.auth_amount is not None else None,
        "settle_amount": str(details.settle_amount) if details.settle_amount is not None else None,
        "settled_at": details.settled_at.isoformat() if details.settled_at else None,
    }


def transition(
    payment: Payment,
    to_status: str,
    *,
    kind: str,
    statuses: list[str],
    log: list[PaymentEvent] | None = None,
    refunds: Iterable[Refund] | None = None,
    stored: bool = False,
) -> dict[str, Any] | None:
    """Move ``payment`` (locked, in a transaction) to ``to_status``: save, log, emit the event.

    With ``log``, the log entry is appended there for the caller to insert with its others in one
    statement. ``refunds``: the payment's refunds when the caller knows them (see ``payment_payload``).
    ``stored``: the caller has already written the row in ``to_status`` (a conditional update).
    Returns the payment as its event carries it (as the API shows it), if it has one.
    """
    from_status = payment.status
    payment.status = to_status
    if not stored:
        payment.save()
    entry = log_entry(payment, kind, from_status=from_status, to_status=to_status)
    if log is None:
        entry.save()
    else:
        log.append(entry)
    statuses.append(to_status)
    event_type = EVENT_FOR_STATUS.get(to_status)
    if not event_type:
        return None
    data = payment_payload(payment, refunds=refunds)
    event_record(merchant_id=payment.merchant_id, event_type=event_type, data=data)
    return data


def emit(payment: Payment, event_type: str) -> None:
    event_record(merchant_id=payment.merchant_id, event_type=event_type, data=payment_payload(payment))


def apply_processor_fields(payment: Payment, result: GatewayResult) -> None:
    # A reply is recorded text (core.text): each value is cut to its column, whatever was sent.
    payment.processor_response_code = (result.response_code or "")[:10]
    payment.processor_response_message = (result.message or "")[:1000]
    payment.processor_reason_code = (result.reason_code or "")[:10]
    if result.transaction_id:
        payment.processor_transaction_id = result.transaction_id[:255]
    if result.auth_code:
        payment.auth_code = result.auth_code[:20]
    if result.avs_result:
        payment.avs_result = result.avs_result[:5]
    if result.cvv_result:
        payment.cvv_result = result.cvv_result[:5]
    if result.card_last_four:
        payment.card_last_four = result.card_last_four[-4:]
    if result.card_brand:
        payment.card_brand = result.card_brand[:50]
    payment.processed_at = timezone.now()


def reserved_refunds(payment: Payment) -> Decimal:
    total = payment.refunds.filter(status__in=[Refund.Status.PENDING, Refund.Status.UNKNOWN]).aggregate(
        total=Sum("amount")
    )["total"]
    return total or Decimal(0)


def operation_release(payment: Payment) -> None:
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        locked.pending_operation = PendingOperation.NONE
        locked.save(update_fields=["pending_operation", "updated_at"])
        after_commit(locked)


def unknown_at_processor(payment: Payment) -> bool:
    """True only when the processor answers that it does not know the payment's transaction."""
    if not payment.processor_transaction_id:
        return False
    try:
        return get_gateway().transaction_details(transaction_id=payment.processor_transaction_id) is None
    except GatewayError:
        return False
