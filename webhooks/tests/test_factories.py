"""The webhooks factories keep a delivery inside one merchant."""

import pytest

from accounts.tests.factories import MerchantFactory
from webhooks.tests.factories import EventDeliveryFactory, EventFactory

pytestmark = pytest.mark.django_db


def test_a_delivery_goes_to_an_endpoint_of_the_events_merchant():
    delivery = EventDeliveryFactory()
    assert delivery.endpoint.merchant_id == delivery.event.merchant_id
    merchant = MerchantFactory()
    other = EventDeliveryFactory(event=EventFactory(merchant=merchant))
    assert other.endpoint.merchant_id == merchant.pk != delivery.event.merchant_id
