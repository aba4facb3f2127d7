"""Races against real PostgreSQL row locks, with real threads and the emulator's own bookkeeping."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from payments.models import Payment, Refund
from payments.tests.factories import body, charges

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 8


def run_parallel(key, calls):
    """Run each ``call(client)`` in its own thread, all released at once; returns the responses."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        try:
            barrier.wait(timeout=10)
            results[index] = call(client)
        except Exception as exc:  # surfaced by the assertions below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(not isinstance(r, Exception) and r is not None for r in results), results
    return results


def test_parallel_partial_refunds_never_exceed_the_captured_amount(api_client, sandbox):
    pid = api_client.post("/api/v1/payments", body(amount="100.00"), format="json").json()["data"]["id"]
    url = f"/api/v1/payments/{pid}/refund"

    responses = run_parallel(api_client.api_key.key, [lambda c: c.post(url, {"amount": "30.00"}, format="json")] * N)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 3 + [409] * (N - 3), [r.content for r in responses]
    payment = Payment.objects.get(pk=pid)
    succeeded = Refund.objects.filter(payment=payment, status="succeeded")
    assert payment.refunded_amount == Decimal("90.00")
    assert payment.refund_count == succeeded.count() == 3
    assert succeeded.aggregate(total=Sum("amount"))["total"] == payment.refunded_amount
    assert not Refund.objects.filter(payment=payment, status__in=["pending", "unknown"]).exists()
    processor_refunds = charges(sandbox, "refundTransaction")
    assert sum(tx.amount for tx in processor_refunds) == Decimal("90.00")
    (original,) = charges(sandbox)
    assert original.refunded_amount == Decimal("90.00")
    assert payment.status == "partially_refunded"


def test_parallel_identical_idempotent_creates_charge_once(api_client, sandbox):
    call = lambda c: c.post("/api/v1/payments", body(), format="json", HTTP_IDEMPOTENCY_KEY="same")  # noqa: E731

    responses = run_parallel(api_client.api_key.key, [call] * N)

    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409}, codes
    assert codes.count(201) >= 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "idempotency_conflict"
    assert len({r.json()["data"]["id"] for r in responses if r.status_code == 201}) == 1
    assert Payment.objects.count() == 1
    assert len(charges(sandbox)) == 1


def test_capture_versus_void_has_one_winner(api_client, sandbox):
    pid = api_client.post("/api/v1/payments", body(capture=False), format="json").json()["data"]["id"]
    base = f"/api/v1/payments/{pid}"
    calls = [
        lambda c: c.post(f"{base}/capture", {}, format="json"),
        lambda c: c.post(f"{base}/cancel", {}, format="json"),
    ]

    responses = run_parallel(api_client.api_key.key, calls * (N // 2))

    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [(r.status_code, r.content) for r in responses]
    assert all(r.status_code == 409 for r in responses if r.status_code != 200)
    payment = Payment.objects.get(pk=pid)
    assert payment.pending_operation == ""
    (tx,) = charges(sandbox)
    if payment.status == "captured":
        assert tx.status in ("capturedPendingSettlement", "settledSuccessfully")
        assert payment.captured_amount == Decimal("25.99")
    else:
        assert payment.status == "voided"
        assert tx.status == "voided"
