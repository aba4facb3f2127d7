"""Apps that act on recorded events register a listener with the outbox (which imports none of them):
it is called with each event inside the event's transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from webhooks import catalogue
from webhooks.models import Event
from webhooks.services import event_listener_register, event_record, events

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard(monkeypatch):
    """A recording listener, registered for the test only."""
    calls = []

    def listener(*, event):
        calls.append((event.pk, event.type, transaction.get_connection().in_atomic_block))

    monkeypatch.setattr(events, "_listeners", list(events._listeners))
    event_listener_register(listener)
    event_listener_register(listener)  # a second registration is a no-op
    return calls


def test_a_listener_hears_each_event_inside_its_transaction(merchant, heard):
    with transaction.atomic():
        event = event_record(merchant_id=merchant.pk, event_type=catalogue.PAYMENT_CAPTURED, data={"id": "pay_1"})
    assert heard == [(event.pk, "payment.captured", True)]


def test_what_a_listener_writes_rolls_back_with_the_event(merchant, monkeypatch):
    monkeypatch.setattr(events, "_listeners", list(events._listeners))

    def listener(*, event):
        Event.objects.create(merchant_id=event.merchant_id, type=catalogue.PAYMENT_FAILED, data={"id": "side"})

    event_listener_register(listener)
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(merchant_id=merchant.pk, event_type=catalogue.PAYMENT_CAPTURED, data={"id": "pay_2"})
        raise RuntimeError("abort")
    assert Event.objects.count() == 0


def test_an_unknown_event_type_is_refused_and_nobody_hears_it(merchant, heard):
    with pytest.raises(ValueError), transaction.atomic():
        event_record(merchant_id=merchant.pk, event_type="payment.exploded", data={"id": "pay_3"})
    assert heard == []
    assert Event.objects.count() == 0
