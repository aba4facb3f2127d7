"""payment_data reuses one serializer per thread: the same output as a fresh serializer, in any thread."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.api.serializers import PaymentSerializer, payment_data, payments_data
from payments.models import Payment, PaymentStatus, Refund
from payments.tests.factories import PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db


def _fresh(payment: Payment) -> dict:
    return json.loads(json.dumps(PaymentSerializer(payment).data))


def _payments(merchant) -> list[Payment]:
    usd = PaymentFactory(
        merchant=merchant,
        amount=Decimal("25.90"),
        currency="USD",
        status=PaymentStatus.PARTIALLY_REFUNDED,
        authorized_amount=Decimal("25.90"),
        captured_amount=Decimal("25.90"),
        refunded_amount=Decimal("5.00"),
        refund_count=1,
        customer_email="jane@example.com",
        metadata={"order": {"id": 7, "tags": ["a", None]}, "note": None},
        processed_at=timezone.now(),
        settled_at=timezone.now(),
    )
    RefundFactory(payment=usd, amount=Decimal("5.00"), status=Refund.Status.SUCCEEDED, reason="damaged")
    jpy = PaymentFactory(merchant=merchant, amount=Decimal("1000"), currency="JPY", status=PaymentStatus.PENDING)
    return list(Payment.objects.filter(pk__in=[usd.pk, jpy.pk]).prefetch_related("refunds").order_by("currency"))


def test_payment_data_is_what_a_fresh_serializer_gives(merchant):
    jpy, usd = _payments(merchant)
    for payment in (usd, jpy, usd):  # reused in between
        assert payment_data(payment) == _fresh(payment)
    assert payment_data(usd)["amount"] == "25.90"
    assert payment_data(usd)["refunds"][0]["amount"] == "5.00"
    assert payment_data(jpy)["amount"] == "1000"
    assert payment_data(jpy)["authorized_amount"] is None
    assert json.loads(json.dumps(payments_data([usd, jpy]))) == json.loads(
        json.dumps(PaymentSerializer([usd, jpy], many=True).data)
    )


def test_threads_never_mix_currencies(merchant):
    jpy, usd = _payments(merchant)
    expected = {usd.pk: _fresh(usd), jpy.pk: _fresh(jpy)}
    barrier = threading.Barrier(8)

    def render(n: int) -> bool:
        barrier.wait()
        payment = (usd, jpy)[n % 2]
        return all(payment_data(payment) == expected[payment.pk] for _ in range(200))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(render, range(8)))
