"""The payment as the API answers it and as every payment event carries it: one representation.

Plain JSON-ready data built from the row, with no HTTP layer involved: the services put it in
events, the views answer it, and ``payments.api.serializers.PaymentSerializer`` documents the same
shape for the OpenAPI schema (``payments/tests/test_payloads.py`` keeps the two equal).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.money import format_amount
from payments.models import Payment, Refund

# The payment's plain text fields and its processor's, each group in the API's key order.
_TEXT_FIELDS = (
    "currency",
    "status",
    "payment_method",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_phone",
    "card_last_four",
    "card_brand",
    "description",
)
_PROCESSOR_FIELDS = ("processor_response_code", "processor_response_message", "processor_transaction_id")
# Every key of a payment as the API shows it, in order: PaymentSerializer (the schema) lists these.
PAYMENT_FIELDS = (
    "id",
    "external_id",
    "amount",
    *_TEXT_FIELDS,
    "metadata",
    *_PROCESSOR_FIELDS,
    "authorized_amount",
    "captured_amount",
    "refunded_amount",
    "refund_count",
    "refunds",
    "subscription_id",
    "created_at",
    "updated_at",
    "processed_at",
    "settled_at",
    "is_test",
)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _instant(value: datetime | None, zone: Any = None) -> str | None:
    """A datetime as DRF's ``DateTimeField`` writes it under ``DATETIME_FORMAT = "iso-8601"``;
    ``zone``: the current time zone when the caller has looked it up already (once per payload: the
    lookup goes through asgiref's Local, and four a payment made it 10 % of a list page's CPU)."""
    if not value:
        return None
    if timezone.is_aware(value):
        value = value.astimezone(zone or timezone.get_current_timezone())
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def api_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in the current time zone, UTC written ``Z`` (DRF's ``iso-8601`` output)."""
    return _instant(value)


def _amount(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else format_amount(value, currency)


def _detached(metadata: Any) -> Any:
    """The metadata as plain JSON that shares nothing with the row (an event's copy never writes
    through to it); ``{}`` without a round trip through ``json``."""
    if metadata is None:
        return None
    if not metadata:
        return {}
    return json.loads(json.dumps(metadata))  # keys become strings, as the API's JSON has them


def refund_payload(refund: Refund, *, currency: str) -> dict[str, Any]:
    """One refund as the API shows it inside its payment (``currency``: the payment's)."""
    return {
        "id": str(refund.pk),
        "amount": _amount(refund.amount, currency or "USD"),
        "status": _text(refund.status),
        "reason": _text(refund.reason),
        "processor_transaction_id": _text(refund.processor_transaction_id),
        "created_at": _instant(refund.created_at),
    }


def payment_payload(payment: Payment, *, refunds: Iterable[Refund] | None = None) -> dict[str, Any]:
    """The payment exactly as the API returns it (webhook events carry the same dict), key order
    included: plain JSON-ready data, detached from the row.

    ``refunds``: the payment's refunds when the caller knows them (none, ``()``, for a charge whose
    outcome it is recording); by default ``payment.refunds.all()`` (its prefetch, else one query).
    """
    currency = payment.currency or "USD"
    data: dict[str, Any] = {
        "id": str(payment.pk),
        "external_id": _text(payment.external_id),
        "amount": _amount(payment.amount, currency),
    }
    for name in _TEXT_FIELDS:
        data[name] = _text(getattr(payment, name))
    data["metadata"] = _detached(payment.metadata)
    for name in _PROCESSOR_FIELDS:
        data[name] = _text(getattr(payment, name))
    data["authorized_amount"] = _amount(payment.authorized_amount, currency)
    data["captured_amount"] = _amount(payment.captured_amount, currency)
    data["refunded_amount"] = _amount(payment.refunded_amount, currency)
    data["refund_count"] = None if payment.refund_count is None else int(payment.refund_count)
    rows = payment.refunds.all() if refunds is None else refunds
    data["refunds"] = [refund_payload(refund, currency=currency) for refund in rows]
    data["subscription_id"] = _text(payment.subscription_id)
    zone = timezone.get_current_timezone()
    data["created_at"] = _instant(payment.created_at, zone)
    data["updated_at"] = _instant(payment.updated_at, zone)
    data["processed_at"] = _instant(payment.processed_at, zone)
    data["settled_at"] = _instant(payment.settled_at, zone)
    data["is_test"] = None if payment.is_test is None else bool(payment.is_test)
    return data


def payments_payload(payments: Iterable[Payment]) -> list[dict[str, Any]]:
    """A page of payments as the API lists them, the page's refunds read in one query, from the
    database the page came from (a replica or the primary)."""
    payments = list(payments)
    if not payments:
        return []
    refunds: dict[Any, list[Refund]] = {payment.pk: [] for payment in payments}
    for refund in Refund.objects.using(payments[0]._state.db).filter(payment_id__in=list(refunds)):
        refunds[refund.payment_id].append(refund)  # in Refund's ordering, as payment.refunds.all()
    return [payment_payload(payment, refunds=refunds[payment.pk]) for payment in payments]
