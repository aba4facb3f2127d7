"""The notifications app listens to the outbox's events (the outbox never imports notifications)."""

from __future__ import annotations

import pytest
from django.db import transaction

from notifications.models import Notification
from notifications.services import notifications_for_event
from webhooks.services import event_record, events

pytestmark = pytest.mark.django_db


def test_notifications_listen_to_the_outbox_once_the_app_is_ready():
    assert events._listeners.count(notifications_for_event) == 1


def test_a_rolled_back_event_queues_no_notification(merchant):
    data = {"id": "pay_x", "status": "captured", "amount": "10.00", "currency": "USD", "customer_email": "a@b.test"}
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(merchant_id=merchant.pk, event_type="payment.captured", data=data)
        raise RuntimeError("abort")
    assert Notification.objects.count() == 0


def test_a_recorded_event_queues_its_notification_in_the_same_transaction(merchant, django_capture_on_commit_callbacks):
    data = {"id": "pay_y", "status": "captured", "amount": "10.00", "currency": "USD", "customer_email": "a@b.test"}
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        event = event_record(merchant_id=merchant.pk, event_type="payment.captured", data=data)
        assert Notification.objects.filter(event_id=event.id, recipient="a@b.test").count() == 1
