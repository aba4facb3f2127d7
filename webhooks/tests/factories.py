"""factory_boy factories of the webhooks app: outbound endpoints, events and their deliveries, and
inbound (processor) events, as stored rows."""

from __future__ import annotations

import factory

from accounts.tests.factories import MerchantFactory
from webhooks.models import Event, EventDelivery, InboundEvent, WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    merchant = factory.SubFactory(MerchantFactory)
    url = "https://hooks.example.com/easypay"
    events = factory.LazyFunction(lambda: ["*"])


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    merchant = factory.SubFactory(MerchantFactory)
    type = "payment.captured"
    data = factory.LazyFunction(dict)


class EventDeliveryFactory(factory.django.DjangoModelFactory):
    """A delivery of an event to an endpoint of the same merchant."""

    class Meta:
        model = EventDelivery

    event = factory.SubFactory(EventFactory)
    endpoint = factory.SubFactory(WebhookEndpointFactory, merchant=factory.SelfAttribute("..event.merchant"))


class InboundEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundEvent

    event_id = factory.Sequence(lambda n: f"notification-{n}")
    event_type = "net.authorize.payment.authcapture.created"
