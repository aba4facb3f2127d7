"""The subscription as the API answers it and as every subscription event carries it.

Plain data built from the row, with no HTTP layer involved: services and notifications use it, the
views answer it, and ``subscriptions.api.serializers.SubscriptionSerializer`` documents the same
shape for the OpenAPI schema (``subscriptions/tests/test_payloads.py`` keeps the two equal).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.money import format_amount
from payments.payloads import api_datetime

from .models import Subscription


def _api_date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def subscription_payload(subscription: Subscription) -> dict[str, Any]:
    """The subscription exactly as the API returns it (also the ``data`` of its events)."""
    method = subscription.payment_method or {}
    return {
        "id": str(subscription.pk),
        "external_id": subscription.external_id,
        "customer_id": subscription.customer_id,
        "customer_email": subscription.customer_email,
        "customer_name": subscription.customer_name,
        "customer_phone": subscription.customer_phone,
        "plan_id": subscription.plan_id,
        "status": str(subscription.status),
        "billing_cycle": str(subscription.billing_cycle),
        "amount": format_amount(subscription.amount, subscription.currency or "USD"),
        "currency": subscription.currency,
        "start_date": _api_date(subscription.start_date),
        "next_billing_date": _api_date(subscription.next_billing_date),
        "current_period_start": _api_date(subscription.current_period_start),
        "current_period_end": _api_date(subscription.current_period_end),
        "payment_method": {
            "type": method.get("type"),
            "card_last_four": method.get("card_last_four"),
            "card_brand": method.get("card_brand"),
        },
        "metadata": subscription.metadata,
        "is_test": subscription.is_test,
        "failure_count": subscription.failure_count,
        "cancelled_at": api_datetime(subscription.cancelled_at),
        "paused_at": api_datetime(subscription.paused_at),
        "created_at": api_datetime(subscription.created_at),
        "updated_at": api_datetime(subscription.updated_at),
    }
