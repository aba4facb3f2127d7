"""The event a payment records for each status comes from the one event catalogue (webhooks.catalogue)."""

from __future__ import annotations

from payments import services
from payments.events import EVENT_FOR_STATUS
from payments.models import PaymentStatus
from webhooks.catalogue import EVENT_TYPES


def test_every_mapped_event_is_in_the_catalogue():
    assert set(EVENT_FOR_STATUS.values()) <= set(EVENT_TYPES)


def test_the_mapping_names_each_status_event():
    assert EVENT_FOR_STATUS == {
        PaymentStatus.AUTHORIZED: "payment.authorized",
        PaymentStatus.CAPTURED: "payment.captured",
        PaymentStatus.DECLINED: "payment.declined",
        PaymentStatus.FAILED: "payment.failed",
        PaymentStatus.HELD: "payment.held",
        PaymentStatus.VOIDED: "payment.voided",
        PaymentStatus.REFUNDED: "payment.refunded",
        PaymentStatus.PARTIALLY_REFUNDED: "payment.partially_refunded",
    }


def test_the_payment_services_use_this_mapping():
    assert services.EVENT_FOR_STATUS == EVENT_FOR_STATUS
