"""The event catalogue: every event type EasyPay records and sends to merchants (one list for the
whole project; apps name their events with these constants)."""

from __future__ import annotations

PAYMENT_AUTHORIZED = "payment.authorized"
PAYMENT_CAPTURED = "payment.captured"
PAYMENT_DECLINED = "payment.declined"
PAYMENT_FAILED = "payment.failed"
PAYMENT_HELD = "payment.held"
PAYMENT_REFUNDED = "payment.refunded"
PAYMENT_PARTIALLY_REFUNDED = "payment.partially_refunded"
PAYMENT_VOIDED = "payment.voided"
PAYMENT_SETTLED = "payment.settled"
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_PAUSED = "subscription.paused"
SUBSCRIPTION_RESUMED = "subscription.resumed"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
SUBSCRIPTION_PAYMENT_SUCCEEDED = "subscription.payment_succeeded"
SUBSCRIPTION_PAYMENT_FAILED = "subscription.payment_failed"
SUBSCRIPTION_PAST_DUE = "subscription.past_due"

EVENT_TYPES = (
    PAYMENT_AUTHORIZED,
    PAYMENT_CAPTURED,
    PAYMENT_DECLINED,
    PAYMENT_FAILED,
    PAYMENT_HELD,
    PAYMENT_REFUNDED,
    PAYMENT_PARTIALLY_REFUNDED,
    PAYMENT_VOIDED,
    PAYMENT_SETTLED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_PAUSED,
    SUBSCRIPTION_RESUMED,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_PAYMENT_SUCCEEDED,
    SUBSCRIPTION_PAYMENT_FAILED,
    SUBSCRIPTION_PAST_DUE,
)
