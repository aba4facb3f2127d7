"""Charges: ``payment_create`` (purchase or authorization) and the recording of its outcome.

Three steps, never a lock or open transaction across the processor call: store the intent (the
pending payment and its ``charge.request`` log), call the processor, then lock the row again and
record the outcome with its event in one transaction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core import sqlwrite
from core.errors import ServiceUnavailable, ValidationFailed
from core.idempotency import Claim, idempotency_outcome_statement
from core.money import checked_amount
from payments.gateways import (
    ChargeRequest,
    GatewayError,
    GatewayResult,
    GatewayUnavailable,
    InvalidPaymentSource,
    Outcome,
    get_gateway,
    processor_environment,
)
from payments.gateways.tokens import TEST_TOKENS, is_test_token, looks_like_test_token
from payments.models import Payment, PaymentEvent, PaymentStatus
from payments.payloads import payment_payload
from payments.services.common import (
    after_commit,
    apply_processor_fields,
    connections_release,
    lock_payment,
    log_entry,
    log_write,
    logger,
    result_data,
    transition,
)
from payments.services.sync import payment_reconcile


@dataclass(frozen=True)
class ChargeResult:
    """What ``payment_create`` hands back: the stored payment, and ``data``, the payment as the API
    shows it (the dict its outcome's event holds) when that outcome emitted one, else None."""

    payment: Payment
    data: dict[str, Any] | None = None


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


def _payment_for_retried_key(*, merchant_id, idempotency_key: str, since: datetime) -> Payment | None:
    """The payment that an earlier request holding this Idempotency-Key created, brought up to date.

    Asked when a retry takes over a claim whose first request died mid-flight (worker killed,
    deploy): charging again would charge twice, so the earlier payment is reconciled and answered.
    ``since`` is when that claim was first made, so a key reused after it expired is a new request.
    """
    earlier = (
        Payment.objects.filter(merchant_id=merchant_id, idempotency_key=idempotency_key, created_at__gte=since)
        .order_by("-created_at")
        .first()
    )
    if earlier is not None and earlier.status == PaymentStatus.PENDING:
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
    idempotency_claim: Claim | None = None,
) -> ChargeResult:
    """Charge (or only authorize) and return the stored payment in whatever state it reached.

    Declines and processor failures do not raise: the payment's status tells (declined, failed,
    held, or pending when the outcome is unknown and reconciliation will settle it). Raises
    ``ValidationFailed`` before storing anything for a bad source or amount, and
    ``ServiceUnavailable`` (payment kept as failed) when the processor circuit is open.

    Give the ``merchant`` or just its ``merchant_id`` (the API passes the id it authenticated, so no
    merchant row is read). Three transactions: the intent (payment and its charge.request log) before
    the processor call, the outcome after it (payment, logs, event). The result carries the payment as
    the API shows it (the same dict its event holds) when its outcome emitted an event, so the caller
    need not serialize it again.

    ``idempotency_claim``: the request's hold on its ``idempotency_key`` (``core.idempotency``). When it
    took over the claim of an earlier request that died mid-flight (``claimed_since``), the payment that
    request stored under the key (reconciled if still pending) is returned and nothing is charged
    again; without one, a charge. A created payment completes the claim in its outcome's transaction.
    """
    if (merchant is None) == (merchant_id is None):
        raise TypeError("give exactly one of merchant and merchant_id")
    merchant_id = merchant.pk if merchant is not None else merchant_id
    claimed_since = idempotency_claim.claimed_since if idempotency_claim is not None else None
    if claimed_since is not None and idempotency_key:
        earlier = _payment_for_retried_key(
            merchant_id=merchant_id, idempotency_key=idempotency_key, since=claimed_since
        )
        if earlier is not None:
            return ChargeResult(earlier)
    amount = checked_amount(amount, currency)
    _check_source(
        is_test=is_test,
        card_token=card_token,
        customer_profile_id=customer_profile_id,
        payment_profile_id=payment_profile_id,
    )
    card = TEST_TOKENS.get(card_token) if is_test and card_token else None
    fields: dict[str, Any] = {
        "merchant_id": merchant_id,
        "amount": amount,
        "currency": currency,
        "status": PaymentStatus.PENDING,
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
    payment = Payment(**fields)
    request_log = log_entry(
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
        to_status=PaymentStatus.PENDING,
    )
    try:
        # The payment and its charge.request log, all or nothing: one round trip on PostgreSQL (inside a
        # caller's transaction, a savepoint keeps it usable after a taken external_id).
        sqlwrite.execute_together(
            [sqlwrite.insert_statement([payment]), sqlwrite.insert_statement([request_log])],
            using=sqlwrite.write_alias(Payment),
            savepoint=True,
        )
    except IntegrityError:
        raise ValidationFailed(details={"external_id": ["A payment with this external_id already exists."]}) from None
    sqlwrite.mark_stored([payment], Payment)

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
        connections_release()
        result = get_gateway().charge(request)
    except GatewayUnavailable as exc:
        payment = _charge_failed_locally(payment, str(exc))
        raise ServiceUnavailable(
            "The payment processor is temporarily unavailable; nothing was charged.", data=payment_payload(payment)
        ) from None
    except InvalidPaymentSource as exc:
        payment = _charge_failed_locally(payment, str(exc))
        raise ValidationFailed(details={"card_token": [str(exc)]}, data=payment_payload(payment)) from None
    return _charge_record(payment, result, capture=capture, amount=amount, claim=idempotency_claim)


def _charge_failed_locally(payment: Payment, message: str) -> Payment:
    statuses: list[str] = []
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.status == PaymentStatus.PENDING:
            locked.processor_response_message = message[:1000]
            locked.processed_at = timezone.now()
            log_write(locked, "charge.response", response={"outcome": "not_sent", "message": message})
            transition(locked, PaymentStatus.FAILED, kind="status_change", statuses=statuses)
        after_commit(locked, statuses)
    return locked


_CREATED_STATUSES = frozenset({PaymentStatus.CAPTURED, PaymentStatus.AUTHORIZED, PaymentStatus.HELD})


def _charge_record(
    payment: Payment, result: GatewayResult, *, capture: bool, amount: Decimal, claim: Claim | None
) -> ChargeResult:
    try:
        return _charge_record_outcome(payment, result, capture=capture, amount=amount, claim=claim)
    except IntegrityError:
        if not _transaction_id_taken(payment, result.transaction_id):
            raise
    return ChargeResult(_charge_failed_duplicate_transaction(payment, result))


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
        locked = lock_payment(payment.pk)
        if locked.status == PaymentStatus.PENDING:
            locked.processor_response_code = result.response_code or ""
            locked.processor_reason_code = result.reason_code or ""
            locked.processor_response_message = (
                f"The processor answered with transaction id {result.transaction_id}, which EasyPay already "
                "holds for another payment: the processor's records do not match EasyPay's. Nothing was "
                "recorded for this payment; check the processor account before retrying."
            )[:1000]
            locked.processed_at = timezone.now()
            log_write(locked, "charge.response", response={**result_data(result), "duplicate_transaction_id": True})
            transition(locked, PaymentStatus.FAILED, kind="status_change", statuses=statuses)
        after_commit(locked, statuses)
    return locked


def _outcome_apply(payment: Payment, result: GatewayResult, *, capture: bool, amount: Decimal) -> str | None:
    """Set the processor's answer on ``payment`` (pending) and return the status it moves to (None:
    the outcome is unknown, it stays pending and reconcile_pending asks the processor by reference)."""
    apply_processor_fields(payment, result)
    if result.outcome is Outcome.APPROVED:
        payment.authorized_amount = amount
        if capture:
            payment.captured_amount = amount
        return PaymentStatus.CAPTURED if capture else PaymentStatus.AUTHORIZED
    if result.outcome is Outcome.DECLINED:
        return PaymentStatus.DECLINED
    if result.outcome is Outcome.HELD:
        payment.authorized_amount = amount
        return PaymentStatus.HELD
    if result.outcome is Outcome.ERROR:
        return PaymentStatus.FAILED
    if not payment.processor_response_message:
        payment.processor_response_message = "No reply from the processor; the outcome will be reconciled."
    return None


def _row_values(payment: Payment) -> dict[str, Any]:
    return {name: getattr(payment, name) for name in _row_attnames()}


@functools.cache
def _row_attnames() -> tuple[str, ...]:
    return tuple(f.attname for f in Payment._meta.concrete_fields if not f.primary_key)


def _outcome_store_if_untouched(payment: Payment, *, status: str, since: datetime, intent: dict[str, Any]) -> bool:
    """Write ``payment`` (in ``status``) with one conditional UPDATE, only if its row is still pending
    and nothing has written it since the intent stored it at ``since``; False if something has.

    Every write of a payment saves the row under its lock, so ``updated_at`` moves with each one: an
    unchanged ``updated_at`` means the row is exactly the intent's. The UPDATE takes the row lock
    itself, and one that waited for a concurrent writer re-checks its WHERE on the committed row, so
    a reconciliation racing the outcome leaves it nothing to update (no SELECT ... FOR UPDATE first).
    That is also why only the columns the outcome changed are written: ``intent`` holds the row's
    values as the intent stored them (the rest of the 35 columns would be written with what they hold).
    """
    now = timezone.now()
    fields = {name: value for name, value in _row_values(payment).items() if value != intent[name]}
    fields.update(status=status, updated_at=now)
    statement = sqlwrite.update_statement(
        Payment, where={"id": payment.pk, "status": PaymentStatus.PENDING, "updated_at": since}, values=fields
    )
    if not sqlwrite.execute(statement, using=sqlwrite.write_alias(Payment)):
        return False
    payment.updated_at = now
    return True


def _charge_record_outcome(
    payment: Payment, result: GatewayResult, *, capture: bool, amount: Decimal, claim: Claim | None
) -> ChargeResult:
    """The outcome in one transaction: the payment, both log entries in one INSERT, the event.

    ``payment`` is the intent as stored. Its row is updated only if still untouched (one conditional
    UPDATE); otherwise (reconciliation or an update wrote it meanwhile) it is locked and read again,
    and reconciliation's answer stands if it already settled the charge.
    """
    statuses: list[str] = []
    data: dict[str, Any] | None = None
    with transaction.atomic():
        since, intent = payment.updated_at, _row_values(payment)
        to_status = _outcome_apply(payment, result, capture=capture, amount=amount)
        stored = _outcome_store_if_untouched(
            payment, status=to_status or PaymentStatus.PENDING, since=since, intent=intent
        )
        if not stored:
            payment = lock_payment(payment.pk)
            if payment.status != PaymentStatus.PENDING:  # reconciliation got there first; its answer stands
                log_write(payment, "charge.response", response=result_data(result))
                return ChargeResult(payment)
            to_status = _outcome_apply(payment, result, capture=capture, amount=amount)
        log = [log_entry(payment, "charge.response", response=result_data(result))]
        if to_status is None:
            if not stored:
                payment.save()
        else:
            # Pending until now: a refund is only ever created for a captured payment, and no payment
            # returns to pending, so it has none (no query for them).
            data = transition(
                payment, to_status, kind="status_change", statuses=statuses, log=log, refunds=(), stored=stored
            )
        writes = [sqlwrite.insert_statement(log)]
        if data is not None and payment.status in _CREATED_STATUSES:
            # The request answers a created payment with exactly this dict: its Idempotency-Key claim is
            # completed in this transaction (the decorator re-checks it against the response it got).
            completion = idempotency_outcome_statement(claim=claim, body=data)
            if completion is not None:
                writes.append(completion)
        # The log lines and the claim's completion in one round trip (nothing reads them back).
        sqlwrite.execute_together(writes, using=sqlwrite.write_alias(PaymentEvent))
        sqlwrite.mark_stored(log, PaymentEvent)
        # The charge's own request is the only reader until it returns, and it does not read the cache:
        # the drop after commit is enough (see after_commit).
        after_commit(payment, statuses, invalidate_now=False)
    return ChargeResult(payment, data)
