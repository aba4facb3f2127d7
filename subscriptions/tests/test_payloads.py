"""subscription_payload is the API's representation: what SubscriptionSerializer (the documented shape) gives."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from subscriptions.api.serializers import SubscriptionSerializer
from subscriptions.models import Subscription
from subscriptions.payloads import subscription_payload
from subscriptions.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _serialized(subscription: Subscription) -> dict:
    return json.loads(json.dumps(dict(SubscriptionSerializer(subscription).data)))


def test_payload_is_what_the_serializer_gives():
    active = SubscriptionFactory(metadata={"plan": {"seats": 3}})
    cancelled = SubscriptionFactory(
        status=Subscription.Status.CANCELLED,
        amount=Decimal("1000"),
        currency="JPY",
        next_billing_date=None,
        current_period_start=date(2024, 1, 31),
        current_period_end=date(2024, 2, 29),
        cancelled_at=timezone.now(),
        paused_at=timezone.now(),
        payment_method={},
        failure_count=3,
    )
    for subscription in (active, cancelled, Subscription.objects.get(pk=cancelled.pk)):
        payload = subscription_payload(subscription)
        assert payload == _serialized(subscription)
        assert list(payload) == list(SubscriptionSerializer.Meta.fields)
        assert json.loads(json.dumps(payload)) == payload
    assert subscription_payload(cancelled)["amount"] == "1000"
    assert subscription_payload(cancelled)["payment_method"] == {
        "type": None,
        "card_last_four": None,
        "card_brand": None,
    }
    assert subscription_payload(active)["next_billing_date"] == "2024-01-31"
