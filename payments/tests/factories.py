"""factory_boy factories of the payments app, and the helpers that create payments through the API
(against the Authorize.Net emulator) the way a merchant would."""

from __future__ import annotations

from decimal import Decimal

import factory

from accounts.tests.factories import MerchantFactory
from payments.models import Payment, PaymentEvent, Refund

PAYMENT_BODY = {
    "amount": "25.99",
    "currency": "USD",
    "customer_id": "cust_1",
    "customer_email": "customer@example.com",
    "customer_name": "Jane Doe",
    "card_token": "tok_visa_4242",
    "description": "Order 1",
    "metadata": {"order_id": "o_1"},
}


def body(**overrides):
    """``POST /payments``' body: ``PAYMENT_BODY`` with overrides (``...`` drops a field)."""
    data = dict(PAYMENT_BODY)
    for key, value in overrides.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def create(client, *, key=None, **overrides):
    """``POST /api/v1/payments`` with ``body(**overrides)`` (and an Idempotency-Key): the response."""
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/payments", body(**overrides), format="json", **headers)


def charges(sandbox, *types):
    """The emulator's charge transactions (auth-capture and auth-only unless ``types`` are given)."""
    types = types or ("authCaptureTransaction", "authOnlyTransaction")
    return [tx for tx in sandbox.state.transactions.values() if tx.transaction_type in types]


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment row as stored, without the processor: every other field keeps its model default."""

    class Meta:
        model = Payment

    merchant = factory.SubFactory(MerchantFactory)
    amount = Decimal("25.00")
    currency = "USD"


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory)
    amount = Decimal("1.00")


class PaymentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentEvent

    payment = factory.SubFactory(PaymentFactory)
    kind = "status_change"
