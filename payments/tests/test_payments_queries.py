"""How many SQL statements the hot paths cost: fixed per request, never one per row (issue #9)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Payment, PaymentStatus, Refund
from payments.tests.factories import PaymentFactory, RefundFactory, create
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def _statements(queries, *tables: str) -> list[str]:
    """The queries (round trips) touching any of ``tables`` (savepoints and other apps' rows left out)."""
    return [q["sql"] for q in queries if any(f'"{table}"' in q["sql"] for table in tables)]


def _captured_payments(merchant, count: int, *, refunds_each: int) -> list[Payment]:
    payments = []
    for _ in range(count):
        payment = PaymentFactory(
            merchant=merchant,
            amount=Decimal("50.00"),
            currency="USD",
            status=PaymentStatus.PARTIALLY_REFUNDED if refunds_each else PaymentStatus.CAPTURED,
            authorized_amount=Decimal("50.00"),
            captured_amount=Decimal("50.00"),
            refunded_amount=Decimal(refunds_each),
            refund_count=refunds_each,
            card_last_four="4242",
            card_brand="visa",
        )
        for _ in range(refunds_each):
            RefundFactory(payment=payment, amount=Decimal("1.00"), status=Refund.Status.SUCCEEDED)
        payments.append(payment)
    return payments


def _list_page(api_client) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/api/v1/payments?limit=20")
    assert response.status_code == 200, response.content
    return response.json(), _statements(queries.captured_queries, "payments_payment", "payments_refund")


def test_a_page_of_payments_with_refunds_costs_two_queries_however_many_rows(api_client):
    _captured_payments(api_client.merchant, 2, refunds_each=1)
    small, small_queries = _list_page(api_client)
    _captured_payments(api_client.merchant, 25, refunds_each=3)
    full, full_queries = _list_page(api_client)

    assert len(small["data"]) == 2
    assert len(full["data"]) == 20
    assert all(len(item["refunds"]) == 3 for item in full["data"])  # the refunds are really there
    # One query for the page, one for all its refunds (prefetched): no query per payment.
    assert len(small_queries) == len(full_queries) == 2
    assert sum('FROM "payments_refund"' in sql for sql in full_queries) == 1


@pytest.mark.django_db(transaction=True)  # real commits: the claim is completed in the outcome's transaction
def test_creating_a_payment_costs_a_fixed_set_of_statements(api_client, anet_sandbox):
    api_client.get("/api/v1/payments?limit=1")  # auth snapshot and usage marker cached first
    create(api_client, key="queries-0", amount="11.00")  # the merchant's (empty) webhook endpoint list cached
    with CaptureQueriesContext(connection) as queries:
        # No customer_email: with one, the receipt is queued too, and in eager mode (no broker) its send
        # runs inline after commit; notifications/tests cover that path.
        response = create(api_client, key="queries-1", amount="12.00", customer_email="")
    assert response.status_code == 201, response.content

    touched = _statements(
        queries.captured_queries,
        "payments_payment",
        "payments_paymentevent",
        "payments_refund",
        "payments_idempotencyrecord",
        "webhooks_event",
        "webhooks_webhookendpoint",
        "accounts_merchant",
    )
    # Five queries: the claim; the intent (payment + charge.request, one query); the outcome (one
    # conditional update, no lock first; the event with its sequence number; both log entries with the
    # key's completion, one query). The merchant and its webhook endpoints (cached) are not read and a
    # new payment's (empty) refunds are not queried. Elsewhere (SQLite, `make run`) the same seven
    # statements go one by one.
    assert len(touched) == (5 if connection.vendor == "postgresql" else 7), touched
    assert not any('FROM "webhooks_webhookendpoint"' in sql for sql in touched)
    assert not any('FROM "accounts_merchant"' in sql for sql in touched)
    assert not any('FROM "payments_refund"' in sql for sql in touched)

    payment = Payment.objects.get(pk=response.json()["data"]["id"])
    assert list(payment.events.order_by("id").values_list("kind", flat=True)) == [
        "charge.request",
        "charge.response",
        "status_change",
    ]
    # The response is the very object the payment.captured event carries, and what GET shows.
    event = Event.objects.get(type="payment.captured", data__id=str(payment.pk))
    assert response.json()["data"] == event.data
    assert api_client.get(f"/api/v1/payments/{payment.pk}").json()["data"] == event.data


@pytest.mark.redis
def test_reading_a_cached_payment_costs_two_redis_round_trips(api_client, anet_sandbox, request):
    """The rate limits with the key's use counter and version (one script: the process's copy of the key
    is current), then the payment."""
    payment_id = create(api_client, amount="3.00").json()["data"]["id"]
    assert api_client.get(f"/api/v1/payments/{payment_id}").status_code == 200  # cached now

    sent = request.getfixturevalue("redis_commands")
    response = api_client.get(f"/api/v1/payments/{payment_id}")
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"]  # the limits were checked
    assert len(sent) == 2, sent
