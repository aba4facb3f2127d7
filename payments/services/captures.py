"""Captures and voids of an authorized (or unsettled captured) payment.

Each marks the payment's ``pending_operation`` under its lock and commits, calls the processor with
no transaction open, then locks again and records the outcome (or asks the processor when the reply
was lost).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from core.errors import InvalidState, ProcessorError, ServiceUnavailable
from payments.gateways import (
    GatewayUnavailable,
    Outcome,
    get_gateway,
)
from payments.models import Payment, PaymentStatus, PendingOperation
from payments.payloads import payment_payload
from payments.services.common import (
    after_commit,
    connections_release,
    lock_payment,
    log_write,
    operation_release,
    reserved_refunds,
    result_data,
    transition,
    unknown_at_processor,
)
from payments.services.sync import payment_refresh_from_processor


def payment_capture(*, payment: Payment, amount: Decimal | None = None) -> Payment:
    """Capture an authorized payment (all of it by default, or less). 409 from any other state."""
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.status != PaymentStatus.AUTHORIZED:
            raise InvalidState(f"Only an authorized payment can be captured; this one is {locked.status}.")
        if locked.pending_operation:
            raise InvalidState(f"A {locked.pending_operation} of this payment is in progress.")
        authorized = locked.authorized_amount if locked.authorized_amount is not None else locked.amount
        amount = authorized if amount is None else amount
        if amount <= 0 or amount > authorized:
            raise InvalidState(
                f"The capture amount must be more than 0 and at most the authorized amount {authorized}.",
                details={"amount": [f"At most {authorized}."]},
            )
        locked.pending_operation = PendingOperation.CAPTURE
        locked.save(update_fields=["pending_operation", "updated_at"])
        log_write(
            locked,
            "capture.request",
            request={"amount": str(amount), "transaction_id": locked.processor_transaction_id},
        )
    try:
        connections_release()
        result = get_gateway().capture(transaction_id=locked.processor_transaction_id, amount=amount)
    except GatewayUnavailable:
        operation_release(locked)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was captured.") from None

    statuses: list[str] = []
    with transaction.atomic():
        locked = lock_payment(locked.pk)
        log_write(locked, "capture.response", response=result_data(result))
        if result.outcome is Outcome.UNKNOWN:
            locked.save()
        else:
            locked.pending_operation = PendingOperation.NONE
            if result.outcome is Outcome.APPROVED and locked.status == PaymentStatus.AUTHORIZED:
                locked.captured_amount = amount
                locked.processor_response_code = (result.response_code or locked.processor_response_code)[:10]
                locked.processor_response_message = result.message or locked.processor_response_message
                transition(locked, PaymentStatus.CAPTURED, kind="status_change", statuses=statuses)
            else:
                locked.save()
        after_commit(locked, statuses)
    if result.outcome is Outcome.UNKNOWN:
        locked = payment_refresh_from_processor(payment=locked, release_operation=True, quiet=True)
        if locked.status != PaymentStatus.CAPTURED:
            raise ProcessorError(
                "No reply from the processor; the capture will be reconciled.", data=payment_payload(locked)
            )
    elif result.outcome is not Outcome.APPROVED:
        raise ProcessorError(
            f"The processor refused the capture: {result.message or result.error_code}", data=payment_payload(locked)
        )
    return locked


def payment_void(*, payment: Payment) -> Payment:
    """Void an authorized or held payment, or a captured one the processor has not settled yet."""
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.pending_operation:
            raise InvalidState(f"A {locked.pending_operation} of this payment is in progress.")
        if locked.status == PaymentStatus.CAPTURED:
            if locked.settled_at is not None:
                raise InvalidState("This payment has settled and can no longer be cancelled; refund it instead.")
            if reserved_refunds(locked) > 0:
                raise InvalidState("A refund of this payment is in progress.")
        elif locked.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.HELD):
            raise InvalidState(
                f"Only an authorized, held or unsettled captured payment can be cancelled; this one is {locked.status}."
            )
        from_status = locked.status
        locked.pending_operation = PendingOperation.VOID
        locked.save(update_fields=["pending_operation", "updated_at"])
        log_write(locked, "void.request", request={"transaction_id": locked.processor_transaction_id})
    try:
        connections_release()
        result = get_gateway().void(transaction_id=locked.processor_transaction_id)
    except GatewayUnavailable:
        operation_release(locked)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was cancelled.") from None

    statuses: list[str] = []
    with transaction.atomic():
        locked = lock_payment(locked.pk)
        log_write(locked, "void.response", response=result_data(result))
        if result.outcome is not Outcome.UNKNOWN:
            locked.pending_operation = PendingOperation.NONE
        if result.outcome is Outcome.APPROVED and locked.status == from_status:
            locked.captured_amount = Decimal(0)
            transition(locked, PaymentStatus.VOIDED, kind="status_change", statuses=statuses)
        else:
            locked.save()
        after_commit(locked, statuses)
    if result.outcome is Outcome.APPROVED:
        return locked
    if result.outcome is Outcome.UNKNOWN:
        locked = payment_refresh_from_processor(payment=locked, release_operation=True, quiet=True)
        if locked.status == PaymentStatus.VOIDED:
            return locked
        raise ProcessorError(
            "No reply from the processor; the cancellation will be reconciled.", data=payment_payload(locked)
        )
    # Refused: most often the capture has settled meanwhile. Ask, record it, and say what to do.
    locked = payment_refresh_from_processor(payment=locked, release_operation=False, quiet=True)
    if locked.settled_at is not None:
        raise InvalidState("This payment has settled and can no longer be cancelled; refund it instead.")
    if unknown_at_processor(locked):
        raise ProcessorError(
            f"The processor has no record of this payment's transaction ({locked.processor_transaction_id}); "
            "nothing was cancelled. EasyPay and the processor disagree about this payment: check the "
            "processor account (its records may have been lost or reset).",
            details={
                "reason": "transaction_unknown_at_processor",
                "processor_transaction_id": locked.processor_transaction_id,
            },
        )
    raise ProcessorError(f"The processor refused the cancellation: {result.message or result.error_code}")
