"""Sample data for each kind: the admin's template preview and the documentation samples."""

from __future__ import annotations

from .models import Kind

_PAYMENT = {
    "payment_id": "3f1c2a9e-8b7d-4c55-9a0e-2b6f1d7c4e21",
    "external_id": "pay_sample",
    "amount": "25.99",
    "currency": "USD",
    "card_brand": "visa",
    "card_last_four": "4242",
    "description": "Order 1001",
    "customer_name": "Jane Doe",
    "paid_at": "2026-12-01T10:15:00Z",
}
_SUBSCRIPTION = {
    "subscription_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "external_id": "sub_sample",
    "plan_id": "pro_monthly",
    "amount": "1500",
    "currency": "JPY",
    "billing_cycle": "monthly",
    "card_brand": "mastercard",
    "card_last_four": "0015",
    "next_billing_date": "2026-12-02",
    "failure_count": 1,
    "customer_name": "Taro Yamada",
}

SAMPLES: dict[str, dict] = {
    Kind.PAYMENT_RECEIPT: dict(_PAYMENT),
    Kind.REFUND_RECEIPT: {
        **_PAYMENT,
        "refund_id": "7d6c5b4a-3e2f-4d1c-9b8a-7f6e5d4c3b2a",
        "refund_amount": "10.00",
        "refund_reason": "Returned item",
        "refunded_at": "2026-12-03T09:00:00Z",
        "refunded_total": "10.00",
        "fully_refunded": False,
    },
    Kind.PAYMENT_FAILED: dict(_SUBSCRIPTION),
    Kind.SUBSCRIPTION_CANCELLED: {
        **_SUBSCRIPTION,
        "failure_count": 4,
        "next_billing_date": None,
        "cancelled_at": "2026-12-10T06:00:00Z",
    },
    Kind.RENEWAL_REMINDER: {**_SUBSCRIPTION, "failure_count": 0, "charge_date": "2026-12-04"},
    Kind.CARD_EXPIRING: {**_SUBSCRIPTION, "failure_count": 0, "card_expiry": "12/2026"},
    Kind.WEBHOOK_ENDPOINT_FAILING: {
        "endpoint_id": "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        "endpoint_url": "https://shop.example.com/hooks/easypay",
        "failed_deliveries": 12,
        "first_failed_at": "2026-11-30T08:00:00Z",
        "hours": 24,
    },
}
