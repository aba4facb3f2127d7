"""payment_payload builds the payment as plain data: the same output as a fresh PaymentSerializer (the
schema's definition), key order included, in any thread."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.api.serializers import PaymentSerializer
from payments.models import Payment, PaymentStatus, Refund
from payments.payloads import payment_payload, payments_payload
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
        assert payment_payload(payment) == _fresh(payment)
    assert payment_payload(usd)["amount"] == "25.90"
    assert payment_payload(usd)["refunds"][0]["amount"] == "5.00"
    assert payment_payload(jpy)["amount"] == "1000"
    assert payment_payload(jpy)["authorized_amount"] is None
    assert json.loads(json.dumps(payments_payload([usd, jpy]))) == json.loads(
        json.dumps(PaymentSerializer([usd, jpy], many=True).data)
    )


def test_threads_never_mix_currencies(merchant):
    jpy, usd = _payments(merchant)
    expected = {usd.pk: _fresh(usd), jpy.pk: _fresh(jpy)}
    barrier = threading.Barrier(8)

    def render(n: int) -> bool:
        barrier.wait()
        payment = (usd, jpy)[n % 2]
        return all(payment_payload(payment) == expected[payment.pk] for _ in range(200))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(render, range(8)))


def _shapes(merchant) -> list[Payment]:
    """Payments in the shapes the API shows: every status, null and zero amounts, three-decimal and
    zero-decimal currencies, refunds in each state, metadata with non-string-looking keys, a
    subscription, and one whose fields hold enum members as a service leaves them in memory."""
    from subscriptions.tests.factories import SubscriptionFactory

    subscription = SubscriptionFactory(merchant=merchant)
    payments = []
    for index, status in enumerate(PaymentStatus):
        currency = ("USD", "JPY", "KWD", "EUR")[index % 4]
        payment = Payment.objects.create(
            merchant=merchant,
            amount=Decimal("12.00") if currency != "JPY" else Decimal("1200"),
            currency=currency,
            status=status,
            authorized_amount=None if index % 2 else Decimal("12.00"),
            captured_amount=Decimal("12.00") if index % 3 == 0 else Decimal("0"),
            refunded_amount=Decimal("2.00") if index % 3 == 0 else Decimal("0"),
            refund_count=index,
            customer_phone="+14155550100" if index % 2 else "",
            metadata={"1": index, "nested": {"k": [1, "x"]}} if index % 2 else {},
            processed_at=timezone.now() if index % 2 else None,
            subscription=subscription if index == 1 else None,
            is_test=bool(index % 2),
        )
        for refund_status in list(Refund.Status)[: index % 4]:
            Refund.objects.create(payment=payment, amount=Decimal("1.00"), status=refund_status, reason=f"r{index}")
        payments.append(payment)
    fresh = list(Payment.objects.filter(merchant=merchant).prefetch_related("refunds").order_by("created_at", "id"))
    in_memory = Payment(merchant=merchant, amount=Decimal("3.50"), currency="USD", status=PaymentStatus.CAPTURED)
    in_memory.created_at = in_memory.updated_at = timezone.now()
    return [*fresh, in_memory]


def test_payment_payload_is_the_serializers_output_key_for_key(merchant):
    shapes = _shapes(merchant)
    assert len(shapes) > len(PaymentStatus)
    for payment in shapes:
        expected = PaymentSerializer(payment).data
        got = payment_payload(payment)
        assert list(got) == list(expected)
        assert got == expected
        assert json.dumps(got) == json.dumps(expected)  # the same text, types included
    assert payment_payload(shapes[0], refunds=[])["refunds"] == []  # refunds the caller knows: no query
