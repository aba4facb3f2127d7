"""factory_boy factories of the notifications app: a merchant's settings and queued messages."""

from __future__ import annotations

import factory

from accounts.tests.factories import MerchantFactory
from notifications.models import Kind, Notification, NotificationSettings


class NotificationSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationSettings

    merchant = factory.SubFactory(MerchantFactory)


class NotificationFactory(factory.django.DjangoModelFactory):
    """A pending payment-receipt email, as the services queue it (without a rendered body)."""

    class Meta:
        model = Notification

    merchant = factory.SubFactory(MerchantFactory)
    kind = Kind.PAYMENT_RECEIPT
    channel = Notification.Channel.EMAIL
    recipient = "buyer@example.com"
    object_type = "payment"
    object_id = factory.Sequence(lambda n: f"pay_{n}")
    dedupe_key = factory.LazyAttribute(lambda o: f"{o.kind}:{o.object_type}:{o.object_id}:{o.recipient}")
