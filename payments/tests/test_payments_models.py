"""What the database and the model layer guarantee on their own, and the payments metric."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from prometheus_client import REGISTRY

from payments.tests.factories import PaymentEventFactory, PaymentFactory, create

pytestmark = pytest.mark.django_db


def make_payment(merchant, **fields):
    values = {"merchant": merchant, "amount": Decimal("10.00"), "currency": "USD", **fields}
    return PaymentFactory(**values)


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": Decimal("0")},
        {"amount": Decimal("-1.00")},
        {"captured_amount": Decimal("10.01")},
        {"captured_amount": Decimal("5.00"), "refunded_amount": Decimal("5.01")},
        {"refunded_amount": Decimal("-0.01")},
        {"status": "capturing"},
    ],
)
def test_database_refuses_impossible_payments(merchant, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_payment(merchant, **fields)


def test_external_id_unique_per_merchant_in_the_database(merchant, other_merchant):
    make_payment(merchant, external_id="x")
    make_payment(other_merchant, external_id="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_payment(merchant, external_id="x")


def test_payment_events_are_append_only(merchant):
    event = PaymentEventFactory(payment=make_payment(merchant), kind="status_change", to_status="pending")
    event.kind = "edited"
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()


def test_reference_fits_authorize_nets_limit(merchant):
    payment = make_payment(merchant)
    assert 1 <= len(payment.reference) <= 20
    assert payment.external_id.startswith("pay_")


def test_payments_total_counts_each_status_reached(api_client, sandbox, django_capture_on_commit_callbacks):
    def value(status):
        return REGISTRY.get_sample_value("easypay_payments_total", {"status": status}) or 0

    captured, declined = value("captured"), value("declined")
    with django_capture_on_commit_callbacks(execute=True):
        create(api_client)
        create(api_client, card_token="tok_declined")
    assert value("captured") == captured + 1
    assert value("declined") == declined + 1


def test_held_payment_can_be_cancelled(api_client, sandbox):
    pid = create(api_client, card_token="tok_held").json()["data"]["id"]
    response = api_client.post(f"/api/v1/payments/{pid}/cancel", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "voided"
