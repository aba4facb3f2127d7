"""Payment writes: the state machine, money movements at the processor, and reconciliation.

Every money movement follows one pattern (never a lock or open transaction across the HTTP call):

1. under ``select_for_update`` check the state, reserve what the call will use (a pending refund,
   a ``pending_operation`` marker) and commit;
2. call the processor with no transaction open;
3. lock the row again and record the outcome, emitting the merchant's event in the same
   transaction (the outbox), or release the reservation.

State machine (statuses the API shows)::

    pending -> authorized | captured | declined | failed | held
    held -> authorized | captured | declined | voided | failed      (the processor's review)
    authorized -> captured | voided
    captured -> partially_refunded -> refunded;  captured -> voided while not settled
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from prometheus_client import Counter

from core.exceptions import InvalidState, ProcessorError, RefundLimitExceeded, ServiceUnavailable, ValidationFailed
from core.idempotency import idempotency_complete_with_outcome
from core.money import (
    CURRENCY_EXPONENTS,
    format_amount,
    from_minor_units,
    max_amount,
    quantum,
    supported_currencies,
    to_minor_units,
)
from payments.cache import payment_cache_invalidate
from payments.gateways import (
    ChargeRequest,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    InvalidPaymentSource,
    Outcome,
    Refusal,
    TransactionDetails,
    TransactionKind,
    TransactionState,
    get_gateway,
    processor_environment,
)
from payments.gateways.tokens import TEST_TOKENS, is_test_token, looks_like_test_token
from payments.models import Payment, PaymentEvent, PaymentStatus, PendingOperation, Refund
from payments.selectors import payment_refundable_amount
from webhooks.services import event_record

logger = logging.getLogger("easypay.payments")

PAYMENTS_TOTAL = Counter("easypay_payments_total", "Payments reaching a status, by status", ["status"])

S = PaymentStatus
EVENT_FOR_STATUS = {
    S.AUTHORIZED: "payment.authorized",
    S.CAPTURED: "payment.captured",
    S.DECLINED: "payment.declined",
    S.FAILED: "payment.failed",
    S.HELD: "payment.held",
    S.VOIDED: "payment.voided",
    S.REFUNDED: "payment.refunded",
    S.PARTIALLY_REFUNDED: "payment.partially_refunded",
}
# What reconciliation may move a payment to, given the processor's view. Never backwards: a
# refunded payment is not "re-captured", a voided one is not revived. A payment we marked failed
# because the processor seemed not to have it is corrected if the processor does have it.
REFRESH_TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.AUTHORIZED, S.CAPTURED, S.DECLINED, S.FAILED, S.HELD, S.VOIDED},
    S.FAILED: {S.AUTHORIZED, S.CAPTURED, S.HELD},
    S.HELD: {S.AUTHORIZED, S.CAPTURED, S.DECLINED, S.VOIDED, S.FAILED},
    S.AUTHORIZED: {S.CAPTURED, S.VOIDED},
    S.CAPTURED: {S.VOIDED},
}
# The processor's view of a transaction -> our status (a refund or an unhandled state maps to none).
STATUS_FOR_STATE = {
    TransactionState.AUTHORIZED: S.AUTHORIZED,
    TransactionState.CAPTURED: S.CAPTURED,
    TransactionState.VOIDED: S.VOIDED,
    TransactionState.EXPIRED: S.VOIDED,
    TransactionState.DECLINED: S.DECLINED,
    TransactionState.HELD: S.HELD,
    TransactionState.FAILED: S.FAILED,
}
UPDATABLE_FIELDS = ("description", "metadata", "customer_email", "customer_name")
MONEY_STATUSES = (S.CAPTURED, S.PARTIALLY_REFUNDED, S.REFUNDED)


def reconcile_after_seconds() -> int:
    return int(getattr(settings, "PAYMENTS_RECONCILE_AFTER_SECONDS", 60))


def reconcile_grace_seconds() -> int:
    return int(getattr(settings, "PAYMENTS_RECONCILE_GRACE_SECONDS", 15 * 60))


# --- helpers ------------------------------------------------------------------------------------


def _serialize(payment: Payment) -> dict[str, Any]:
    from payments.api.serializers import payment_data

    return payment_data(payment)


def _lock(payment_id) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def _after_commit(payment: Payment, statuses: list[str] | None = None) -> None:
    merchant_id, payment_id = payment.merchant_id, payment.pk
    # Now (so nothing in this transaction's own reads is stale) and again after commit (so a reader
    # that cached the old row meanwhile is corrected).
    payment_cache_invalidate(merchant_id=merchant_id, payment_id=payment_id)

    def run() -> None:
        payment_cache_invalidate(merchant_id=merchant_id, payment_id=payment_id)
        for status in statuses or []:
            PAYMENTS_TOTAL.labels(status=status).inc()

    transaction.on_commit(run)


def _log_entry(
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


def _log(payment: Payment, kind: str, *, request=None, response=None, from_status="", to_status="") -> None:
    _log_entry(payment, kind, request=request, response=response, from_status=from_status, to_status=to_status).save()


def _no_refunds_yet(payment: Payment) -> None:
    """Tell the serializer that ``payment`` (locked while pending) has no refunds, sparing the query.

    Only for a payment locked in status pending: a refund row is only ever created under the same
    lock for a captured payment, and no payment returns to pending.
    """
    empty = Refund.objects.none()
    empty._result_cache = []
    empty._prefetch_done = True
    payment._prefetched_objects_cache = {"refunds": empty}


def _result_data(result: GatewayResult) -> dict[str, Any]:
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


def _details_data(details: TransactionDetails | None) -> dict[str, Any]:
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


def _transition(
    payment: Payment, to_status: str, *, kind: str, statuses: list[str], log: list[PaymentEvent] | None = None
) -> dict[str, Any] | None:
    """Move ``payment`` (locked, in a transaction) to ``to_status``: save, log, emit the event.

    With ``log``, the log entry is appended there for the caller to insert with its others in one
    statement. Returns the payment as its event carries it (as the API shows it), if it has one.
    """
    from_status = payment.status
    payment.status = to_status
    payment.save()
    entry = _log_entry(payment, kind, from_status=from_status, to_status=to_status)
    if log is None:
        entry.save()
    else:
        log.append(entry)
    statuses.append(to_status)
    event_type = EVENT_FOR_STATUS.get(to_status)
    if not event_type:
        return None
    data = _serialize(payment)
    event_record(merchant_id=payment.merchant_id, event_type=event_type, data=data)
    return data


def _emit(payment: Payment, event_type: str) -> None:
    event_record(merchant_id=payment.merchant_id, event_type=event_type, data=_serialize(payment))


def _apply_processor_fields(payment: Payment, result: GatewayResult) -> None:
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


def _check_money(amount: Decimal, currency: str) -> Decimal:
    if currency not in supported_currencies() or currency not in CURRENCY_EXPONENTS:
        raise ValidationFailed(details={"currency": [f"Currency '{currency}' is not supported."]})
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ValidationFailed(details={"amount": ["Must be greater than zero."]})
    if amount > max_amount():
        raise ValidationFailed(details={"amount": [f"Must not exceed {max_amount()}."]})
    if amount != amount.quantize(quantum(currency)):
        raise ValidationFailed(details={"amount": [f"Too many decimal places for {currency}."]})
    return amount.quantize(quantum(currency))


def _check_source(*, is_test: bool, card_token, customer_profile_id, payment_profile_id) -> None:
    if card_token:
        if customer_profile_id or payment_profile_id:
            raise ValidationFailed(details={"card_token": ["Give a card token or a stored payment profile, not both."]})
        if is_test and not is_test_token(card_token):
            raise ValidationFailed(
                details={"card_token": [f"Test mode accepts only the test card tokens: {', '.join(TEST_TOKENS)}."]}
            )
        if not is_test and looks_like_test_token(card_token):
            raise ValidationFailed(details={"card_token": ["Test card tokens cannot be used in live mode."]})
        return
    if not (customer_profile_id and payment_profile_id):
        raise ValidationFailed(details={"card_token": ["This field is required."]})


# --- create -------------------------------------------------------------------------------------


def payment_for_retried_key(*, merchant, idempotency_key: str, since) -> Payment | None:
    """The payment that an earlier request holding this Idempotency-Key created, brought up to date.

    Asked when a retry takes over a claim whose first request died mid-flight (worker killed,
    deploy): charging again would charge twice, so the earlier payment is reconciled and answered.
    ``since`` is when that claim was first made, so a key reused after it expired is a new request.
    """
    earlier = (
        Payment.objects.filter(merchant=merchant, idempotency_key=idempotency_key, created_at__gte=since)
        .order_by("-created_at")
        .first()
    )
    if earlier is not None and earlier.status == S.PENDING:
        try:
            earlier = payment_reconcile(payment=earlier)
        except GatewayError:
            logger.warning("could not reconcile payment %s on an idempotent retry", earlier.pk)
    return earlier


def payment_create(
    *,
    merchant=None,
    merchant_id=None,
    is_test: bool,
    amount: Decimal,
    currency: str,
    capture: bool = True,
    card_token: str | None = None,
    customer_profile_id: str | None = None,
    payment_profile_id: str | None = None,
    customer_id: str = "",
    customer_email: str = "",
    customer_name: str = "",
    customer_phone: str = "",
    description: str = "",
    metadata: dict | None = None,
    external_id: str | None = None,
    subscription=None,
    idempotency_key: str | None = None,
) -> Payment:
    """Charge (or only authorize) and return the stored payment in whatever state it reached.

    Declines and processor failures do not raise: the payment's status tells (declined, failed,
    held, or pending when the outcome is unknown and reconciliation will settle it). Raises
    ``ValidationFailed`` before storing anything for a bad source or amount, and
    ``ServiceUnavailable`` (payment kept as failed) when the processor circuit is open.

    Give the ``merchant`` or just its ``merchant_id`` (the API passes the id it authenticated, so no
    merchant row is read). Three transactions: the intent (payment and its charge.request log) before
    the processor call, the outcome after it (payment, logs, event). The returned payment carries
    ``api_data``, the payment as the API shows it (the same dict its event holds), when its outcome
    emitted an event, so the caller need not serialize it again.
    """
    if (merchant is None) == (merchant_id is None):
        raise TypeError("give exactly one of merchant and merchant_id")
    amount = _check_money(amount, currency)
    _check_source(
        is_test=is_test,
        card_token=card_token,
        customer_profile_id=customer_profile_id,
        payment_profile_id=payment_profile_id,
    )
    card = TEST_TOKENS.get(card_token) if is_test and card_token else None
    fields: dict[str, Any] = {
        "merchant_id": merchant.pk if merchant is not None else merchant_id,
        "amount": amount,
        "currency": currency,
        "status": S.PENDING,
        "customer_id": customer_id or "",
        "customer_email": customer_email or "",
        "customer_name": customer_name or "",
        "customer_phone": customer_phone or "",
        "description": description or "",
        "metadata": metadata or {},
        "is_test": is_test,
        "subscription": subscription,
        "idempotency_key": idempotency_key or "",
        "card_last_four": card.last_four if card else "",
        "card_brand": card.brand if card else "",
        "processor_environment": processor_environment(),
    }
    if external_id:
        fields["external_id"] = external_id
    try:
        with transaction.atomic():
            payment = Payment.objects.create(**fields)
            _log(
                payment,
                "charge.request",
                request={
                    "amount": str(amount),
                    "currency": currency,
                    "capture": capture,
                    "reference": payment.reference,
                    "source": "card_token" if card_token else "customer_profile",
                    "is_test": is_test,
                },
                to_status=S.PENDING,
            )
    except IntegrityError:
        raise ValidationFailed(details={"external_id": ["A payment with this external_id already exists."]}) from None

    request = ChargeRequest(
        amount=amount,
        currency=currency,
        capture=capture,
        reference=payment.reference,
        card_token=card_token or None,
        customer_profile_id=customer_profile_id or None,
        payment_profile_id=payment_profile_id or None,
        is_test=is_test,
        description=description or "",
        customer_id=customer_id or "",
        customer_email=customer_email or "",
    )
    try:
        result = get_gateway().charge(request)
    except GatewayUnavailable as exc:
        payment = _charge_failed_locally(payment, str(exc))
        raise ServiceUnavailable(
            "The payment processor is temporarily unavailable; nothing was charged.", data=_serialize(payment)
        ) from None
    except InvalidPaymentSource as exc:
        payment = _charge_failed_locally(payment, str(exc))
        raise ValidationFailed(details={"card_token": [str(exc)]}, data=_serialize(payment)) from None
    return _charge_record(payment, result, capture=capture, amount=amount)


def _charge_failed_locally(payment: Payment, message: str) -> Payment:
    statuses: list[str] = []
    with transaction.atomic():
        p = _lock(payment.pk)
        if p.status == S.PENDING:
            p.processor_response_message = message[:1000]
            p.processed_at = timezone.now()
            _log(p, "charge.response", response={"outcome": "not_sent", "message": message})
            _transition(p, S.FAILED, kind="status_change", statuses=statuses)
        _after_commit(p, statuses)
    return p


_CREATED_STATUSES = frozenset({S.CAPTURED, S.AUTHORIZED, S.HELD})


def _charge_record(payment: Payment, result: GatewayResult, *, capture: bool, amount: Decimal) -> Payment:
    try:
        return _charge_record_outcome(payment, result, capture=capture, amount=amount)
    except IntegrityError:
        if not _transaction_id_taken(payment, result.transaction_id):
            raise
    return _charge_failed_duplicate_transaction(payment, result)


def _transaction_id_taken(payment: Payment, transaction_id: str | None) -> bool:
    return bool(transaction_id) and (
        Payment.objects.filter(
            processor_environment=payment.processor_environment, processor_transaction_id=transaction_id
        )
        .exclude(pk=payment.pk)
        .exists()
    )


def _charge_failed_duplicate_transaction(payment: Payment, result: GatewayResult) -> Payment:
    """The processor answered with a transaction id EasyPay already holds for another payment: it has
    lost its own records (an emulator restarted without its state file, a misconfigured account). The id
    is not recorded (the database refuses it) and the payment fails with a message saying so."""
    logger.error(
        "processor returned transaction id %s, already held by another payment; payment %s marked failed",
        result.transaction_id,
        payment.pk,
    )
    statuses: list[str] = []
    with transaction.atomic():
        p = _lock(payment.pk)
        if p.status == S.PENDING:
            p.processor_response_code = result.response_code or ""
            p.processor_reason_code = result.reason_code or ""
            p.processor_response_message = (
                f"The processor answered with transaction id {result.transaction_id}, which EasyPay already "
                "holds for another payment: the processor's records do not match EasyPay's. Nothing was "
                "recorded for this payment; check the processor account before retrying."
            )[:1000]
            p.processed_at = timezone.now()
            _log(p, "charge.response", response={**_result_data(result), "duplicate_transaction_id": True})
            _transition(p, S.FAILED, kind="status_change", statuses=statuses)
        _after_commit(p, statuses)
    return p


def _charge_record_outcome(payment: Payment, result: GatewayResult, *, capture: bool, amount: Decimal) -> Payment:
    """The outcome in one transaction: lock, update the payment, insert both log entries at once, event."""
    statuses: list[str] = []
    data: dict[str, Any] | None = None
    with transaction.atomic():
        p = _lock(payment.pk)
        log = [_log_entry(p, "charge.response", response=_result_data(result))]
        if p.status != S.PENDING:  # reconciliation got there first; its answer stands
            PaymentEvent.objects.bulk_create(log)
            return p
        _no_refunds_yet(p)
        _apply_processor_fields(p, result)
        transition = {"kind": "status_change", "statuses": statuses, "log": log}
        if result.outcome is Outcome.APPROVED:
            p.authorized_amount = amount
            if capture:
                p.captured_amount = amount
            data = _transition(p, S.CAPTURED if capture else S.AUTHORIZED, **transition)
        elif result.outcome is Outcome.DECLINED:
            data = _transition(p, S.DECLINED, **transition)
        elif result.outcome is Outcome.HELD:
            p.authorized_amount = amount
            data = _transition(p, S.HELD, **transition)
        elif result.outcome is Outcome.ERROR:
            data = _transition(p, S.FAILED, **transition)
        else:  # UNKNOWN: stays pending; reconcile_pending asks the processor by reference
            if not p.processor_response_message:
                p.processor_response_message = "No reply from the processor; the outcome will be reconciled."
            p.save()
        PaymentEvent.objects.bulk_create(log)
        if data is not None and p.status in _CREATED_STATUSES:
            # POST /payments answers 201 with exactly this dict: its Idempotency-Key claim is completed
            # in this transaction (the decorator re-checks it against the response it got).
            idempotency_complete_with_outcome(status=201, body=data)
        _after_commit(p, statuses)
    if data is not None:
        p.api_data = data
    return p


# --- capture, void, refund ----------------------------------------------------------------------


def _reserved_refunds(payment: Payment) -> Decimal:
    total = payment.refunds.filter(status__in=[Refund.Status.PENDING, Refund.Status.UNKNOWN]).aggregate(
        total=Sum("amount")
    )["total"]
    return total or Decimal(0)


def _release_operation(payment: Payment) -> None:
    with transaction.atomic():
        p = _lock(payment.pk)
        p.pending_operation = PendingOperation.NONE
        p.save(update_fields=["pending_operation", "updated_at"])
        _after_commit(p)


def payment_capture(*, payment: Payment, amount: Decimal | None = None) -> Payment:
    """Capture an authorized payment (all of it by default, or less). 409 from any other state."""
    with transaction.atomic():
        p = _lock(payment.pk)
        if p.status != S.AUTHORIZED:
            raise InvalidState(f"Only an authorized payment can be captured; this one is {p.status}.")
        if p.pending_operation:
            raise InvalidState(f"A {p.pending_operation} of this payment is in progress.")
        authorized = p.authorized_amount if p.authorized_amount is not None else p.amount
        amount = authorized if amount is None else amount
        if amount <= 0 or amount > authorized:
            raise InvalidState(
                f"The capture amount must be more than 0 and at most the authorized amount {authorized}.",
                details={"amount": [f"At most {authorized}."]},
            )
        p.pending_operation = PendingOperation.CAPTURE
        p.save(update_fields=["pending_operation", "updated_at"])
        _log(p, "capture.request", request={"amount": str(amount), "transaction_id": p.processor_transaction_id})
    try:
        result = get_gateway().capture(transaction_id=p.processor_transaction_id, amount=amount)
    except GatewayUnavailable:
        _release_operation(p)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was captured.") from None

    statuses: list[str] = []
    with transaction.atomic():
        p = _lock(p.pk)
        _log(p, "capture.response", response=_result_data(result))
        if result.outcome is Outcome.UNKNOWN:
            p.save()
        else:
            p.pending_operation = PendingOperation.NONE
            if result.outcome is Outcome.APPROVED and p.status == S.AUTHORIZED:
                p.captured_amount = amount
                p.processor_response_code = (result.response_code or p.processor_response_code)[:10]
                p.processor_response_message = result.message or p.processor_response_message
                _transition(p, S.CAPTURED, kind="status_change", statuses=statuses)
            else:
                p.save()
        _after_commit(p, statuses)
    if result.outcome is Outcome.UNKNOWN:
        p = _refresh_quietly(p, release_operation=True)
        if p.status != S.CAPTURED:
            raise ProcessorError("No reply from the processor; the capture will be reconciled.", data=_serialize(p))
    elif result.outcome is not Outcome.APPROVED:
        raise ProcessorError(
            f"The processor refused the capture: {result.message or result.error_code}", data=_serialize(p)
        )
    return p


def payment_void(*, payment: Payment) -> Payment:
    """Void an authorized or held payment, or a captured one the processor has not settled yet."""
    with transaction.atomic():
        p = _lock(payment.pk)
        if p.pending_operation:
            raise InvalidState(f"A {p.pending_operation} of this payment is in progress.")
        if p.status == S.CAPTURED:
            if p.settled_at is not None:
                raise InvalidState("This payment has settled and can no longer be cancelled; refund it instead.")
            if _reserved_refunds(p) > 0:
                raise InvalidState("A refund of this payment is in progress.")
        elif p.status not in (S.AUTHORIZED, S.HELD):
            raise InvalidState(
                f"Only an authorized, held or unsettled captured payment can be cancelled; this one is {p.status}."
            )
        from_status = p.status
        p.pending_operation = PendingOperation.VOID
        p.save(update_fields=["pending_operation", "updated_at"])
        _log(p, "void.request", request={"transaction_id": p.processor_transaction_id})
    try:
        result = get_gateway().void(transaction_id=p.processor_transaction_id)
    except GatewayUnavailable:
        _release_operation(p)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was cancelled.") from None

    statuses: list[str] = []
    with transaction.atomic():
        p = _lock(p.pk)
        _log(p, "void.response", response=_result_data(result))
        if result.outcome is not Outcome.UNKNOWN:
            p.pending_operation = PendingOperation.NONE
        if result.outcome is Outcome.APPROVED and p.status == from_status:
            p.captured_amount = Decimal(0)
            _transition(p, S.VOIDED, kind="status_change", statuses=statuses)
        else:
            p.save()
        _after_commit(p, statuses)
    if result.outcome is Outcome.APPROVED:
        return p
    if result.outcome is Outcome.UNKNOWN:
        p = _refresh_quietly(p, release_operation=True)
        if p.status == S.VOIDED:
            return p
        raise ProcessorError("No reply from the processor; the cancellation will be reconciled.", data=_serialize(p))
    # Refused: most often the capture has settled meanwhile. Ask, record it, and say what to do.
    p = _refresh_quietly(p, release_operation=False)
    if p.settled_at is not None:
        raise InvalidState("This payment has settled and can no longer be cancelled; refund it instead.")
    if _unknown_at_processor(p):
        raise ProcessorError(
            f"The processor has no record of this payment's transaction ({p.processor_transaction_id}); "
            "nothing was cancelled. EasyPay and the processor disagree about this payment: check the "
            "processor account (its records may have been lost or reset).",
            details={
                "reason": "transaction_unknown_at_processor",
                "processor_transaction_id": p.processor_transaction_id,
            },
        )
    raise ProcessorError(f"The processor refused the cancellation: {result.message or result.error_code}")


SUPPORT_UNLIMITED_PERMISSION = "audit.refund_payment_unlimited"


def _support_cap_check(p: Payment, amount: Decimal) -> None:
    """Under the payment's lock: the capped refunds of ``p`` (pending, unknown or succeeded: all but
    failed) plus ``amount`` stay within ``STAFF_SUPPORT_REFUND_LIMITS[p.currency]`` (minor units)."""
    limits = getattr(settings, "STAFF_SUPPORT_REFUND_LIMITS", {}) or {}
    cap = limits.get(p.currency)
    already = Refund.objects.filter(payment=p, support_capped=True).exclude(status=Refund.Status.FAILED).aggregate(
        total=Sum("amount")
    )["total"] or Decimal(0)
    already_minor = to_minor_units(already, p.currency)
    asked_minor = to_minor_units(amount, p.currency)
    if cap is None:
        raise RefundLimitExceeded(
            f"Your role may not refund {p.currency} payments (no support refund limit is set for {p.currency}).",
            details={"currency": p.currency, "limit_minor": None},
        )
    if already_minor + asked_minor > cap:
        left = max(0, cap - already_minor)
        raise RefundLimitExceeded(
            f"Your role may refund at most {format_amount(from_minor_units(cap, p.currency), p.currency)} "
            f"{p.currency} of this payment in all; {format_amount(from_minor_units(left, p.currency), p.currency)} "
            f"is left ({format_amount(amount, p.currency)} asked). Ask finance.",
            details={
                "currency": p.currency,
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
        p = _lock(payment.pk)
        if p.status not in (S.CAPTURED, S.PARTIALLY_REFUNDED):
            raise InvalidState(f"Only a captured payment can be refunded; this one is {p.status}.")
        if p.pending_operation:
            raise InvalidState(f"A {p.pending_operation} of this payment is in progress.")
        available = payment_refundable_amount(payment=p)
        if available <= 0:
            raise InvalidState("Nothing is left to refund on this payment (other refunds are in progress or done).")
        amount = available if amount is None else amount
        if amount <= 0 or amount > available:
            raise InvalidState(
                f"The refund amount exceeds what is left to refund ({available}).",
                details={"amount": [f"At most {available}."]},
            )
        if capped:
            _support_cap_check(p, amount)
        refund = Refund.objects.create(
            payment=p,
            amount=amount,
            reason=reason or "",
            status=Refund.Status.PENDING,
            created_by=staff_user,
            support_capped=capped,
        )
        _log(
            p,
            "refund.request",
            request={"refund_id": str(refund.pk), "amount": str(amount), "reference": refund.reference},
        )
        _after_commit(p)
    try:
        result = get_gateway().refund(
            transaction_id=p.processor_transaction_id,
            amount=amount,
            card_last_four=p.card_last_four or "XXXX",
            reference=refund.reference,
        )
    except GatewayUnavailable:
        _refund_record(refund.pk, None)
        raise ServiceUnavailable("The payment processor is temporarily unavailable; nothing was refunded.") from None
    refund, p = _refund_record(refund.pk, result)
    if result.outcome is Outcome.APPROVED:
        return refund
    if result.outcome is Outcome.UNKNOWN:
        raise ProcessorError("No reply from the processor; the refund will be reconciled.", data=_serialize(p))
    if result.refusal in (Refusal.NOT_SETTLED, Refusal.TRANSACTION_NOT_FOUND) and _unknown_at_processor(p):
        raise ProcessorError(
            f"The processor has no record of this payment's transaction ({p.processor_transaction_id}); "
            "nothing was refunded. EasyPay and the processor disagree about this payment: check the "
            "processor account (its records may have been lost or reset).",
            details={
                "reason": "transaction_unknown_at_processor",
                "processor_transaction_id": p.processor_transaction_id,
            },
            data=_serialize(p),
        )
    if result.refusal is Refusal.NOT_SETTLED:
        raise InvalidState("This payment has not settled yet and cannot be refunded; cancel it instead.")
    raise ProcessorError(f"The processor refused the refund: {result.message or result.error_code}", data=_serialize(p))


def _unknown_at_processor(p: Payment) -> bool:
    """True only when the processor answers that it does not know the payment's transaction."""
    if not p.processor_transaction_id:
        return False
    try:
        return get_gateway().transaction_details(transaction_id=p.processor_transaction_id) is None
    except GatewayError:
        return False


def _refund_record(refund_id, result: GatewayResult | None) -> tuple[Refund, Payment]:
    """Record a refund's outcome under the payment's lock (payment first, then refund)."""
    statuses: list[str] = []
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").get(pk=refund_id)
        p = _lock(refund.payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        _log(
            p,
            "refund.response",
            response={"refund_id": str(refund.pk), **(_result_data(result) if result else {"outcome": "not_sent"})},
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
                _apply_refund(p, refund, statuses)
        _after_commit(p, statuses)
    return refund, p


def _apply_refund(p: Payment, refund: Refund, statuses: list[str]) -> None:
    p.refunded_amount += refund.amount
    p.refund_count += 1
    to_status = S.REFUNDED if p.refunded_amount >= p.captured_amount else S.PARTIALLY_REFUNDED
    if to_status == p.status:  # a further partial refund: same status, still an event
        p.save()
        _log(p, "status_change", from_status=p.status, to_status=p.status)
        _emit(p, EVENT_FOR_STATUS[to_status])
        statuses.append(to_status)
    else:
        _transition(p, to_status, kind="status_change", statuses=statuses)


def refund_reconcile(*, refund: Refund) -> Refund:
    """Settle a refund whose reply was lost: find it at the processor by its reference."""
    found = get_gateway().find_transactions(reference=refund.reference, since=refund.created_at - timedelta(days=1))
    match = next((d for d in found if d.kind in (TransactionKind.REFUND, None)), None)
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


# --- update -------------------------------------------------------------------------------------


def payment_update(*, payment: Payment, **fields: Any) -> Payment:
    """Change only description, metadata, customer_email and customer_name."""
    unknown = sorted(set(fields) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ValidationFailed(details={name: ["This field cannot be changed."] for name in unknown})
    with transaction.atomic():
        p = _lock(payment.pk)
        changed = {name: value for name, value in fields.items() if getattr(p, name) != value}
        for name, value in changed.items():
            setattr(p, name, value)
        if changed:
            p.save()
            _log(p, "update", request={"fields": sorted(changed)})
        _after_commit(p)
    return p


# --- reconciliation -----------------------------------------------------------------------------


def _pick_charge(found: list[TransactionDetails]) -> TransactionDetails | None:
    charges = [d for d in found if d.kind not in (TransactionKind.REFUND, TransactionKind.VOID)]
    if not charges:
        return None
    # Prefer one the processor accepted, should a retry ever have produced two.
    for details in charges:
        if STATUS_FOR_STATE.get(details.state) in (S.CAPTURED, S.AUTHORIZED, S.HELD):
            return details
    return charges[0]


def _fetch_details(payment: Payment) -> TransactionDetails | None:
    gateway = get_gateway()
    if payment.processor_transaction_id:
        return gateway.transaction_details(transaction_id=payment.processor_transaction_id)
    found = gateway.find_transactions(reference=payment.reference, since=payment.created_at - timedelta(days=1))
    return _pick_charge(found)


def payment_refresh_from_processor(*, payment: Payment) -> Payment:
    """Ask the processor for the payment's real state and apply it (reconciliation, inbound webhooks).

    Looks the charge up by transaction id, or by reference when its reply was lost. Never moves a
    payment backwards; sets ``settled_at`` and emits ``payment.settled`` once. A pending payment the
    processor does not know becomes failed after the grace period. Raises ``GatewayError``
    subclasses when the processor cannot be asked.
    """
    return _refresh(payment, release_operation=_operation_is_stale(payment))


def _operation_is_stale(payment: Payment) -> bool:
    return bool(payment.pending_operation) and timezone.now() - payment.updated_at >= timedelta(
        seconds=reconcile_after_seconds()
    )


def _refresh_quietly(payment: Payment, *, release_operation: bool) -> Payment:
    try:
        return _refresh(payment, release_operation=release_operation)
    except GatewayError as exc:
        logger.warning("could not refresh payment %s from the processor: %s", payment.pk, exc)
        return Payment.objects.get(pk=payment.pk)


def _refresh(payment: Payment, *, release_operation: bool) -> Payment:
    details = _fetch_details(payment)
    statuses: list[str] = []
    with transaction.atomic():
        p = _lock(payment.pk)
        _log(p, "reconcile", response=_details_data(details))
        if details is None:
            age = timezone.now() - p.created_at
            if (
                p.status == S.PENDING
                and not p.processor_transaction_id
                and age >= timedelta(seconds=reconcile_grace_seconds())
            ):
                p.processor_response_message = "The processor has no record of this charge."
                _transition(p, S.FAILED, kind="status_change", statuses=statuses)
            _after_commit(p, statuses)
            return p
        _apply_details(p, details, statuses)
        if release_operation and p.pending_operation:
            p.pending_operation = PendingOperation.NONE
            p.save(update_fields=["pending_operation", "updated_at"])
        _after_commit(p, statuses)
    return p


def _apply_details(p: Payment, details: TransactionDetails, statuses: list[str]) -> None:
    target = STATUS_FOR_STATE.get(details.state)
    if not p.processor_transaction_id and details.transaction_id:
        p.processor_transaction_id = details.transaction_id[:255]
    if details.card_last_four and not p.card_last_four:
        p.card_last_four = details.card_last_four[-4:]
    if details.card_brand and not p.card_brand:
        p.card_brand = details.card_brand[:50]
    if details.auth_code and not p.auth_code:
        p.auth_code = details.auth_code[:20]
    if target and target != p.status and target in REFRESH_TRANSITIONS.get(p.status, set()):
        if details.response_code:
            p.processor_response_code = details.response_code[:10]
        if details.reason_code:
            p.processor_reason_code = details.reason_code[:10]
        if details.reason_text:
            p.processor_response_message = details.reason_text[:1000]
        p.processed_at = p.processed_at or timezone.now()
        if target in (S.AUTHORIZED, S.CAPTURED, S.HELD) and p.authorized_amount is None:
            p.authorized_amount = min(details.auth_amount or p.amount, p.amount)
        if target == S.VOIDED and p.refunded_amount == 0:
            p.captured_amount = Decimal(0)
        if target == S.CAPTURED:
            captured = details.settle_amount or details.auth_amount or p.authorized_amount or p.amount
            p.captured_amount = min(captured, p.amount)
        _transition(p, target, kind="status_change", statuses=statuses)
    else:
        p.save()
    settled = details.settled or details.settled_at is not None
    if settled and p.settled_at is None and p.status in MONEY_STATUSES:
        p.settled_at = details.settled_at or timezone.now()
        p.save()
        _log(p, "settled", response={"settled_at": p.settled_at.isoformat()})
        _emit(p, "payment.settled")


def payment_reconcile(*, payment: Payment) -> Payment:
    """One reconciliation pass over a payment: its charge if pending, its lost refunds, settlement."""
    if payment.status == S.PENDING or payment.pending_operation:
        payment = payment_refresh_from_processor(payment=payment)
    stale = timezone.now() - timedelta(seconds=reconcile_after_seconds())
    for refund in payment.refunds.filter(
        status__in=[Refund.Status.UNKNOWN, Refund.Status.PENDING], created_at__lte=stale
    ):
        refund_reconcile(refund=refund)
    return Payment.objects.get(pk=payment.pk)


def payment_settlement_sync(*, payment: Payment) -> Payment:
    """Set ``settled_at`` (and emit ``payment.settled`` once) when the processor has settled the charge."""
    if payment.settled_at is not None or payment.status not in MONEY_STATUSES or not payment.processor_transaction_id:
        return payment
    return payment_refresh_from_processor(payment=payment)
