"""Refunds: ``refund_create`` (with the support refund cap), the recording of a refund's outcome, and
``refund_reconcile`` for a refund whose reply was lost.

A refund's amount is reserved (a pending ``Refund`` row) under the payment's lock before the
processor is asked, so concurrent refunds never exceed what was captured.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import InvalidState, ProcessorError, RefundLimitExceeded, ServiceUnavailable
from core.money import format_amount, from_minor_units, to_minor_units
from payments.gateways import (
    GatewayResult,
    GatewayUnavailable,
    Outcome,
    Refusal,
    TransactionKind,
    TransactionState,
    get_gateway,
)
from payments.models import Payment, PaymentStatus, Refund
from payments.payloads import payment_payload
from payments.selectors import payment_refundable_amount
from payments.services.common import (
    EVENT_FOR_STATUS,
    after_commit,
    connections_release,
    emit,
    lock_payment,
    log_write,
    reconcile_grace_seconds,
    result_data,
    transition,
    unknown_at_processor,
)

SUPPORT_UNLIMITED_PERMISSION = "audit.refund_payment_unlimited"


def _support_cap_check(locked: Payment, amount: Decimal) -> None:
    """Under the payment's lock: the capped refunds of ``p`` (pending, unknown or succeeded: all but
    failed) plus ``amount`` stay within ``STAFF_SUPPORT_REFUND_LIMITS[currency]`` (minor units)."""
    currency = locked.currency
    limits = settings.STAFF_SUPPORT_REFUND_LIMITS or {}
    cap = limits.get(currency)
    already = Refund.objects.filter(payment=locked, support_capped=True).exclude(status=Refund.Status.FAILED).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    already_minor = to_minor_units(already, currency)
    asked_minor = to_minor_units(amount, currency)
    if cap is None:
        raise RefundLimitExceeded(
            f"Your role may not refund {currency} payments (no support refund limit is set for {currency}).",
            details={"currency": currency, "limit_minor": None},
        )
    if already_minor + asked_minor > cap:
        left = max(0, cap - already_minor)
        raise RefundLimitExceeded(
            f"Your role may refund at most {format_amount(from_minor_units(cap, currency), currency)} "
            f"{currency} of this payment in all; {format_amount(from_minor_units(left, currency), currency)} "
            f"is left ({format_amount(amount, currency)} asked). Ask finance.",
            details={
                "currency": currency,
                "limit_minor": cap,
                "already_refunded_minor": already_minor,
                "requested_minor": asked_minor,
            },
        )


def refund_create(*, payment: Payment, amount: Decimal | None = None, reason: str = "", staff_user=None) -> Refund:
    """Refund a captured payment, fully by default or partially; never past the captured amount.

    Concurrent refunds reserve their amount under the payment's row lock first, so however many
    race, the processor is only asked for refunds that fit.

    ``staff_user``: a back-office refund. Without ``audit.refund_payment_unlimited`` (the support
    group) it is capped: all such refunds of the payment together, in its currency's minor units
    (``STAFF_SUPPORT_REFUND_LIMITS``), checked under the same lock (``RefundLimitExceeded``, 403).
    """
    capped = staff_user is not None and not staff_user.has_perm(SUPPORT_UNLIMITED_PERMISSION)
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise InvalidState(f"Only a captured payment can be refunded; this one is {locked.status}.")
        if locked.pending_operation:
            raise InvalidState(f"A {locked.pending_operation} of this payment is in progress.")
        available = payment_refundable_amount(payment=locked)
        if available <= 0:
            raise InvalidState("Nothing is left to refund on this payment (other refunds are in progress or done).")
        amount = available if amount is None else amount
        if amount <= 0 or amount > available:
            raise InvalidState(
                f"The refund amount exceeds what is left to refund ({available}).",
                details={"amount": [f"At most {available}."]},
            )
        if capped:
            _support_cap_check(locked, amount)
        refund = Refund.objects.create(
            payment=locked,
            amount=amount,
            reason=reason or "",
            status=Refund.Status.PENDING,
            created_by=staff_user,
            support_capped=capped,
        )
        log_write(
            locked,
            "refund.request",
            request={"refund_id": str(refund.pk), "amount": str(amount), "reference": refund.reference},
        )
        after_commit(locked)
    try:
        connections_release()
        result = get_gateway().refund(
            transaction_id=locked.processor_transaction_id,
            amount=amount,
            card_last_four=locked.card_last_four or "XXXX",
            reference=refund.reference,
        )
    except GatewayUnavailable:
        _refund_record(refund.pk, None)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was refunded.") from None
    refund, locked = _refund_record(refund.pk, result)
    if result.outcome is Outcome.APPROVED:
        return refund
    if result.outcome is Outcome.UNKNOWN:
        raise ProcessorError(
            "No reply from the processor; the refund will be reconciled.", data=payment_payload(locked)
        )
    if result.refusal in (Refusal.NOT_SETTLED, Refusal.TRANSACTION_NOT_FOUND) and unknown_at_processor(locked):
        raise ProcessorError(
            f"The processor has no record of this payment's transaction ({locked.processor_transaction_id}); "
            "nothing was refunded. EasyPay and the processor disagree about this payment: check the "
            "processor account (its records may have been lost or reset).",
            details={
                "reason": "transaction_unknown_at_processor",
                "processor_transaction_id": locked.processor_transaction_id,
            },
            data=payment_payload(locked),
        )
    if result.refusal is Refusal.NOT_SETTLED:
        raise InvalidState("This payment has not settled yet and cannot be refunded; cancel it instead.")
    raise ProcessorError(
        f"The processor refused the refund: {result.message or result.error_code}", data=payment_payload(locked)
    )


def _refund_record(refund_id, result: GatewayResult | None) -> tuple[Refund, Payment]:
    """Record a refund's outcome under the payment's lock (payment first, then refund)."""
    statuses: list[str] = []
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        locked = lock_payment(refund.payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        log_write(
            locked,
            "refund.response",
            response={"refund_id": str(refund.pk), **(result_data(result) if result else {"outcome": "not_sent"})},
        )
        if refund.status in (Refund.Status.PENDING, Refund.Status.UNKNOWN):
            if result is None or result.outcome in (Outcome.DECLINED, Outcome.ERROR, Outcome.HELD):
                refund.status = Refund.Status.FAILED
            elif result.outcome is Outcome.UNKNOWN:
                refund.status = Refund.Status.UNKNOWN
            else:
                refund.status = Refund.Status.SUCCEEDED
            if result is not None:
                refund.processor_transaction_id = (result.transaction_id or "")[:255]
                refund.processor_response_code = (result.response_code or "")[:10]
                refund.processor_response_message = (result.message or "")[:1000]
                refund.processed_at = timezone.now()
            refund.save()
            if refund.status == Refund.Status.SUCCEEDED:
                _apply_refund(locked, refund, statuses)
        after_commit(locked, statuses)
    return refund, locked


def _apply_refund(locked: Payment, refund: Refund, statuses: list[str]) -> None:
    locked.refunded_amount += refund.amount
    locked.refund_count += 1
    to_status = (
        PaymentStatus.REFUNDED if locked.refunded_amount >= locked.captured_amount else PaymentStatus.PARTIALLY_REFUNDED
    )
    if to_status == locked.status:  # a further partial refund: same status, still an event
        locked.save()
        log_write(locked, "status_change", from_status=locked.status, to_status=locked.status)
        emit(locked, EVENT_FOR_STATUS[to_status])
        statuses.append(to_status)
    else:
        transition(locked, to_status, kind="status_change", statuses=statuses)


def refund_reconcile(*, refund: Refund) -> Refund:
    """Settle a refund whose reply was lost: find it at the processor by its reference."""
    found = get_gateway().find_transactions(reference=refund.reference, since=refund.created_at - timedelta(days=1))
    match = next((details for details in found if details.kind in (TransactionKind.REFUND, None)), None)
    if match is None:
        if timezone.now() - refund.created_at < timedelta(seconds=reconcile_grace_seconds()):
            return refund
        result = GatewayResult(outcome=Outcome.ERROR, message="Not found at the processor.")
    else:
        outcome = (
            Outcome.APPROVED if match.approved and match.state is not TransactionState.DECLINED else Outcome.DECLINED
        )
        result = GatewayResult(
            outcome=outcome,
            transaction_id=match.transaction_id,
            response_code=match.response_code,
            reason_code=match.reason_code,
            message=match.reason_text or "",
        )
    refund, _ = _refund_record(refund.pk, result)
    return refund
