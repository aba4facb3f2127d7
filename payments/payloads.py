"""The payment as the API answers it and as every payment event carries it: one representation.

Plain JSON-ready data built from the row, with no HTTP layer involved: the services put it in
events, the views answer it, and ``payments.api.serializers.PaymentSerializer`` documents the same
shape for the OpenAPI schema (``payments/tests/test_payloads.py`` keeps the two equal).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone

from core.money import format_amount
from payments.models import Payment, Refund


def api_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in the current time zone, UTC written ``Z`` (DRF's ``iso-8601`` output)."""
    if not value:
        return None
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def refund_payload(refund: Refund, currency: str) -> dict[str, Any]:
    return {
        "id": str(refund.pk),
        "amount": format_amount(refund.amount, currency),
        "status": str(refund.status),
        "reason": refund.reason,
        "processor_transaction_id": refund.processor_transaction_id,
        "created_at": api_datetime(refund.created_at),
    }


def payment_payload(payment: Payment, *, refunds: Iterable[Refund] | None = None) -> dict[str, Any]:
    """The payment exactly as the API returns it (webhook events carry the same dict).

    ``refunds``: the payment's refunds when the caller knows them (none, ``()``, for a charge whose
    outcome it is recording); by default ``payment.refunds.all()`` (its prefetch, else one query).
    """
    currency = payment.currency
    rows = payment.refunds.all() if refunds is None else refunds
    return {
        "id": str(payment.pk),
        "external_id": payment.external_id,
        "amount": format_amount(payment.amount, currency),
        "currency": currency,
        "status": str(payment.status),
        "payment_method": payment.payment_method,
        "customer_id": payment.customer_id,
        "customer_email": payment.customer_email,
        "customer_name": payment.customer_name,
        "customer_phone": payment.customer_phone,
        "card_last_four": payment.card_last_four,
        "card_brand": payment.card_brand,
        "description": payment.description,
        "metadata": json.loads(json.dumps(payment.metadata)),
        "processor_response_code": payment.processor_response_code,
        "processor_response_message": payment.processor_response_message,
        "processor_transaction_id": payment.processor_transaction_id,
        "authorized_amount": format_amount(payment.authorized_amount, currency),
        "captured_amount": format_amount(payment.captured_amount, currency),
        "refunded_amount": format_amount(payment.refunded_amount, currency),
        "refund_count": payment.refund_count,
        "refunds": [refund_payload(refund, currency) for refund in rows],
        "subscription_id": str(payment.subscription_id) if payment.subscription_id is not None else None,
        "created_at": api_datetime(payment.created_at),
        "updated_at": api_datetime(payment.updated_at),
        "processed_at": api_datetime(payment.processed_at),
        "settled_at": api_datetime(payment.settled_at),
        "is_test": payment.is_test,
    }


def payments_payload(payments: Iterable[Payment]) -> list[dict[str, Any]]:
    return [payment_payload(payment) for payment in payments]
