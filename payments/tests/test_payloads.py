"""payment_payload is the API's representation: what PaymentSerializer (the documented shape) gives."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.api.serializers import PaymentSerializer
from payments.models import Payment, PaymentStatus, Refund
from payments.payloads import api_datetime, payment_payload, payments_payload
from subscriptions.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _serialized(payment: Payment) -> dict:
    return json.loads(json.dumps(PaymentSerializer(payment).data))


def _payments(merchant) -> list[Payment]:
    refunded = Payment.objects.create(
        merchant=merchant,
        amount=Decimal("25.90"),
        currency="USD",
        status=PaymentStatus.PARTIALLY_REFUNDED,
        authorized_amount=Decimal("25.90"),
        captured_amount=Decimal("25.90"),
        refunded_amount=Decimal("5.00"),
        refund_count=2,
        customer_email="jane@example.com",
        customer_phone="+14155550100",
        metadata={"order": {"id": 7, "tags": ["a", None]}, "note": None},
        processor_transaction_id="60123",
        processed_at=timezone.now(),
        settled_at=timezone.now(),
        subscription=SubscriptionFactory(merchant=merchant),
    )
    Refund.objects.create(payment=refunded, amount=Decimal("3.00"), status=Refund.Status.SUCCEEDED, reason="damaged")
    Refund.objects.create(payment=refunded, amount=Decimal("2"), status=Refund.Status.PENDING)
    pending = Payment.objects.create(merchant=merchant, amount=Decimal("1000"), currency="JPY", status="pending")
    return list(Payment.objects.filter(pk__in=[refunded.pk, pending.pk]).order_by("currency"))


def test_payload_is_what_the_serializer_gives(merchant):
    pending, refunded = _payments(merchant)
    for payment in (refunded, pending):
        assert payment_payload(payment) == _serialized(payment)
        assert list(payment_payload(payment)) == list(PaymentSerializer.Meta.fields)
    assert payment_payload(refunded)["refunds"][1]["amount"] == "2.00"
    assert payment_payload(refunded)["subscription_id"] == str(refunded.subscription_id)
    assert payment_payload(pending)["amount"] == "1000"
    assert payment_payload(pending)["authorized_amount"] is None
    assert payments_payload([refunded, pending]) == [_serialized(refunded), _serialized(pending)]


def test_payload_is_plain_json_detached_from_the_row(merchant):
    _, refunded = _payments(merchant)
    data = payment_payload(refunded)
    assert json.loads(json.dumps(data)) == data
    data["metadata"]["order"]["id"] = 8  # an event's copy never writes through to the row
    assert refunded.metadata["order"]["id"] == 7
    assert type(data["status"]) is str


def test_api_datetime_writes_utc_as_z():
    moment = timezone.now()
    assert api_datetime(moment) == moment.isoformat().replace("+00:00", "Z")
    assert api_datetime(None) is None
