"""Each event carries ``sequence``: 1, 2, 3 ... per object, in the order its state changes committed."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, transaction

from payments.tests.factories import create
from webhooks.models import Event
from webhooks.services import event_body, event_record

pytestmark = pytest.mark.django_db


def _events_of(object_id):
    return list(Event.objects.filter(data__id=object_id).order_by("sequence"))


def test_a_payments_events_are_numbered_in_order(api_client, anet_sandbox):
    payment = create(api_client, capture=False, amount="50.00").json()["data"]
    pid = payment["id"]
    assert api_client.post(f"/api/v1/payments/{pid}/capture", {}, format="json").status_code == 200
    assert api_client.post(f"/api/v1/payments/{pid}/refund", {"amount": "10.00"}, format="json").status_code == 200
    assert api_client.post(f"/api/v1/payments/{pid}/refund", {}, format="json").status_code == 200

    events = _events_of(pid)
    types = [e.type for e in events]
    assert types[0] == "payment.authorized" and "payment.captured" in types and types[-1] == "payment.refunded"
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.sequence for e in sorted(events, key=lambda e: (e.created_at, e.sequence))] == [
        e.sequence for e in events
    ]
    body = json.loads(event_body(events[-1]))
    assert body["sequence"] == len(events)
    assert set(body) == {"id", "type", "created", "sequence", "data"}
    listed = api_client.get(f"/api/v1/events/{events[-1].id}").json()["data"]
    assert listed["sequence"] == len(events)


def test_sequences_are_per_object(api_client, anet_sandbox):
    first = create(api_client).json()["data"]
    second = create(api_client).json()["data"]
    assert [e.sequence for e in _events_of(first["id"])] == [1]
    assert [e.sequence for e in _events_of(second["id"])] == [1]


def test_a_rolled_back_change_gives_its_number_back(merchant):
    data = {"id": "obj-1"}
    with transaction.atomic():
        assert event_record(merchant_id=merchant.pk, event_type="payment.captured", data=data).sequence == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(merchant_id=merchant.pk, event_type="payment.refunded", data=data)
        raise RuntimeError("the state change failed")
    with transaction.atomic():
        assert event_record(merchant_id=merchant.pk, event_type="payment.refunded", data=data).sequence == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_of_one_object_are_numbered_in_commit_order(merchant):
    """The second change waits for the first to commit, so its number is higher, never equal."""
    data = {"id": "obj-race"}
    first_recorded = threading.Event()
    times: dict[str, float] = {}
    results: dict[str, int] = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = event_record(
                    merchant_id=merchant.pk, event_type="payment.captured", data=data
                ).sequence
                first_recorded.set()
                time.sleep(0.5)
                times["first_commit"] = time.monotonic()
        finally:
            connection.close()

    def second():
        try:
            first_recorded.wait(5)
            with transaction.atomic():
                results["second"] = event_record(
                    merchant_id=merchant.pk, event_type="payment.settled", data=data
                ).sequence
                times["second_numbered"] = time.monotonic()
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {"first": 1, "second": 2}
    assert times["second_numbered"] >= times["first_commit"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_concurrent_events_of_one_object_get_distinct_numbers(merchant):
    n = 8
    barrier = threading.Barrier(n)
    numbers: list[int] = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait(10)
            with transaction.atomic():
                seq = event_record(
                    merchant_id=merchant.pk, event_type="payment.captured", data={"id": "obj-n"}
                ).sequence
            with lock:
                numbers.append(seq)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(numbers) == list(range(1, n + 1))
