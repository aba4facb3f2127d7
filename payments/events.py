"""Which event a payment reaching a status records: the payment statuses mapped onto the event
catalogue (``webhooks.catalogue``, the one list of event type names)."""

from __future__ import annotations

from payments.models import PaymentStatus
from webhooks import catalogue

EVENT_FOR_STATUS: dict[str, str] = {
    PaymentStatus.AUTHORIZED: catalogue.PAYMENT_AUTHORIZED,
    PaymentStatus.CAPTURED: catalogue.PAYMENT_CAPTURED,
    PaymentStatus.DECLINED: catalogue.PAYMENT_DECLINED,
    PaymentStatus.FAILED: catalogue.PAYMENT_FAILED,
    PaymentStatus.HELD: catalogue.PAYMENT_HELD,
    PaymentStatus.VOIDED: catalogue.PAYMENT_VOIDED,
    PaymentStatus.REFUNDED: catalogue.PAYMENT_REFUNDED,
    PaymentStatus.PARTIALLY_REFUNDED: catalogue.PAYMENT_PARTIALLY_REFUNDED,
}
