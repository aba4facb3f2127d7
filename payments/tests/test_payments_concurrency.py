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


class _ChargeThen:
    """The real gateway, whose ``charge`` runs ``then(reference)`` once the processor has answered,
    before the outcome is recorded: a write landing between the intent and the outcome."""

    def __init__(self, then):
        from payments.gateways import get_gateway

        self._gateway = get_gateway()
        self._then = then

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def charge(self, request):
        result = self._gateway.charge(request)
        self._then(request.reference)
        return result


def test_a_reconciliation_that_settles_the_charge_first_wins_over_the_outcome(api_client, sandbox, monkeypatch):
    """Reconciliation records the charge while its reply is on the way: the outcome's conditional
    UPDATE finds the row no longer as the intent left it, and reconciliation's answer stands."""
    from payments import services
    from payments.services import charges as charges_module
    from webhooks.models import Event

    def reconcile(reference):
        services.payment_reconcile(payment=Payment.objects.get(reference=reference))
        connection.close()  # as a separate worker would; the request reopens its own

    monkeypatch.setattr(charges_module, "get_gateway", lambda: _ChargeThen(reconcile))

    response = api_client.post("/api/v1/payments", body(), format="json")

    assert response.status_code == 201, response.content
    payment = Payment.objects.get()
    assert response.json()["data"]["status"] == payment.status == "captured"
    assert payment.captured_amount == Decimal("25.99")
    assert Event.objects.filter(type="payment.captured").count() == 1  # one transition, one event
    kinds = list(payment.events.values_list("kind", "to_status"))
    assert kinds.count(("status_change", "captured")) == 1, kinds
    assert ("charge.response", "") in kinds, kinds  # the late reply is still logged
    assert len(charges(sandbox)) == 1


def test_an_update_committing_while_the_outcome_waits_for_the_row_is_kept(api_client, sandbox, monkeypatch):
    """An update holds the row lock when the outcome's UPDATE arrives: that UPDATE waits, re-checks
    its condition on the committed row, matches nothing, and the outcome is recorded under the lock
    on top of the update (the merchant's description survives and is in the answer and the event)."""
    from payments import services
    from payments.services import charges as charges_module
    from webhooks.models import Event

    locked, done = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def update_holding_the_lock(reference):
        def run():
            try:
                from django.db import transaction

                with transaction.atomic():
                    payment = services.common.lock_payment(Payment.objects.get(reference=reference).pk)
                    payment.description = "edited meanwhile"
                    payment.save()
                    locked.set()
                    done.wait(timeout=0.5)  # the outcome's UPDATE is blocked on this row meanwhile
            except Exception as exc:  # surfaced below
                errors.append(exc)
                locked.set()
            finally:
                connection.close()

        threading.Thread(target=run).start()
        assert locked.wait(timeout=10)

    monkeypatch.setattr(charges_module, "get_gateway", lambda: _ChargeThen(update_holding_the_lock))

    response = api_client.post("/api/v1/payments", body(description="as created"), format="json")

    done.set()
    assert not errors, errors
    assert response.status_code == 201, response.content
    payment = Payment.objects.get()
    assert (payment.status, payment.description) == ("captured", "edited meanwhile")
    assert response.json()["data"]["description"] == "edited meanwhile"
    (event,) = Event.objects.filter(type="payment.captured")
    assert event.data["description"] == "edited meanwhile"
    assert payment.captured_amount == Decimal("25.99") == payment.authorized_amount


@pytest.mark.redis
def test_a_get_that_cached_the_pending_charge_is_corrected_by_the_outcome(api_client, sandbox, monkeypatch):
    """The outcome drops the payment's cache entry only after its commit: a GET that cached the row
    while pending (during the processor call) is not served once the POST has answered."""
    from payments.services import charges as charges_module

    seen = []

    def get_while_pending(reference):
        def run():
            client = APIClient()
            client.credentials(HTTP_X_API_KEY=api_client.api_key.key)
            pid = Payment.objects.get(reference=reference).pk
            seen.extend(client.get(f"/api/v1/payments/{pid}").json()["data"]["status"] for _ in range(2))
            connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=30)

    monkeypatch.setattr(charges_module, "get_gateway", lambda: _ChargeThen(get_while_pending))

    response = api_client.post("/api/v1/payments", body(), format="json")

    assert response.status_code == 201, response.content
    assert seen == ["pending", "pending"]  # the second GET was served from the cache
    pid = response.json()["data"]["id"]
    assert api_client.get(f"/api/v1/payments/{pid}").json()["data"]["status"] == "captured"
