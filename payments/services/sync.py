"""Asking the processor: ``payment_refresh_from_processor`` (the one "ask and apply" step) and
``payment_reconcile`` (a reconciliation pass, or the settlement pass, built on it).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from payments.gateways import (
    GatewayError,
    TransactionDetails,
    TransactionKind,
    get_gateway,
)
from payments.models import Payment, PaymentStatus, PendingOperation, Refund
from payments.services.common import (
    MONEY_STATUSES,
    REFRESH_TRANSITIONS,
    STATUS_FOR_STATE,
    after_commit,
    details_data,
    emit,
    lock_payment,
    log_write,
    logger,
    reconcile_after_seconds,
    reconcile_grace_seconds,
    transition,
)
from payments.services.refunds import refund_reconcile


def _pick_charge(found: list[TransactionDetails]) -> TransactionDetails | None:
    charges = [details for details in found if details.kind not in (TransactionKind.REFUND, TransactionKind.VOID)]
    if not charges:
        return None
    # Prefer one the processor accepted, should a retry ever have produced two.
    for details in charges:
        if STATUS_FOR_STATE.get(details.state) in (
            PaymentStatus.CAPTURED,
            PaymentStatus.AUTHORIZED,
            PaymentStatus.HELD,
        ):
            return details
    return charges[0]


def _fetch_details(payment: Payment) -> TransactionDetails | None:
    gateway = get_gateway()
    if payment.processor_transaction_id:
        return gateway.transaction_details(transaction_id=payment.processor_transaction_id)
    found = gateway.find_transactions(reference=payment.reference, since=payment.created_at - timedelta(days=1))
    return _pick_charge(found)


def payment_refresh_from_processor(
    *, payment: Payment, release_operation: bool | None = None, quiet: bool = False
) -> Payment:
    """Ask the processor for the payment's real state and apply it: the one "ask the processor" step.

    Looks the charge up by transaction id, or by reference when its reply was lost. Never moves a
    payment backwards; sets ``settled_at`` and emits ``payment.settled`` once. A pending payment the
    processor does not know becomes failed after the grace period.

    ``release_operation``: clear the payment's ``pending_operation`` marker once applied (by default
    only when the marker is stale, its request having died). Raises ``GatewayError`` subclasses when
    the processor cannot be asked, unless ``quiet``: then that is logged and the stored row returned.
    """
    if release_operation is None:
        release_operation = _operation_is_stale(payment)
    try:
        details = _fetch_details(payment)
    except GatewayError as exc:
        if not quiet:
            raise
        logger.warning("could not refresh payment %s from the processor: %s", payment.pk, exc)
        return Payment.objects.get(pk=payment.pk)
    return _record_details(payment, details, release_operation=release_operation)


def _operation_is_stale(payment: Payment) -> bool:
    return bool(payment.pending_operation) and timezone.now() - payment.updated_at >= timedelta(
        seconds=reconcile_after_seconds()
    )


def _record_details(payment: Payment, details: TransactionDetails | None, *, release_operation: bool) -> Payment:
    statuses: list[str] = []
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        log_write(locked, "reconcile", response=details_data(details))
        if details is None:
            age = timezone.now() - locked.created_at
            if (
                locked.status == PaymentStatus.PENDING
                and not locked.processor_transaction_id
                and age >= timedelta(seconds=reconcile_grace_seconds())
            ):
                locked.processor_response_message = "The processor has no record of this charge."
                transition(locked, PaymentStatus.FAILED, kind="status_change", statuses=statuses)
            after_commit(locked, statuses)
            return locked
        _apply_details(locked, details, statuses)
        if release_operation and locked.pending_operation:
            locked.pending_operation = PendingOperation.NONE
            locked.save(update_fields=["pending_operation", "updated_at"])
        after_commit(locked, statuses)
    return locked


def _apply_details(locked: Payment, details: TransactionDetails, statuses: list[str]) -> None:
    target = STATUS_FOR_STATE.get(details.state)
    if not locked.processor_transaction_id and details.transaction_id:
        locked.processor_transaction_id = details.transaction_id[:255]
    if details.card_last_four and not locked.card_last_four:
        locked.card_last_four = details.card_last_four[-4:]
    if details.card_brand and not locked.card_brand:
        locked.card_brand = details.card_brand[:50]
    if details.auth_code and not locked.auth_code:
        locked.auth_code = details.auth_code[:20]
    if target and target != locked.status and target in REFRESH_TRANSITIONS.get(locked.status, set()):
        if details.response_code:
            locked.processor_response_code = details.response_code[:10]
        if details.reason_code:
            locked.processor_reason_code = details.reason_code[:10]
        if details.reason_text:
            locked.processor_response_message = details.reason_text[:1000]
        locked.processed_at = locked.processed_at or timezone.now()
        if (
            target in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.HELD)
            and locked.authorized_amount is None
        ):
            locked.authorized_amount = min(details.auth_amount or locked.amount, locked.amount)
        if target == PaymentStatus.VOIDED and locked.refunded_amount == 0:
            locked.captured_amount = Decimal(0)
        if target == PaymentStatus.CAPTURED:
            captured = details.settle_amount or details.auth_amount or locked.authorized_amount or locked.amount
            locked.captured_amount = min(captured, locked.amount)
        transition(locked, target, kind="status_change", statuses=statuses)
    else:
        locked.save()
    settled = details.settled or details.settled_at is not None
    if settled and locked.settled_at is None and locked.status in MONEY_STATUSES:
        locked.settled_at = details.settled_at or timezone.now()
        locked.save()
        log_write(locked, "settled", response={"settled_at": locked.settled_at.isoformat()})
        emit(locked, "payment.settled")


def payment_reconcile(*, payment: Payment, settlement: bool = False) -> Payment:
    """One reconciliation pass over a payment, the periodic tasks' entry point.

    By default: its charge if pending or an operation is in progress, then its refunds whose reply
    was lost. ``settlement=True`` is the settlement pass instead: a captured (or refunded) payment
    with a processor transaction and no ``settled_at`` yet is asked whether it has settled (which
    sets ``settled_at`` and emits ``payment.settled`` once); any other payment is returned as is.
    """
    if settlement:
        if (
            payment.settled_at is not None
            or payment.status not in MONEY_STATUSES
            or not payment.processor_transaction_id
        ):
            return payment
        return payment_refresh_from_processor(payment=payment)
    if payment.status == PaymentStatus.PENDING or payment.pending_operation:
        payment = payment_refresh_from_processor(payment=payment)
    stale = timezone.now() - timedelta(seconds=reconcile_after_seconds())
    for refund in payment.refunds.filter(
        status__in=[Refund.Status.UNKNOWN, Refund.Status.PENDING], created_at__lte=stale
    ):
        refund_reconcile(refund=refund)
    return Payment.objects.get(pk=payment.pk)
