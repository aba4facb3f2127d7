"""factory_boy factories for subscriptions (rows as the API would have stored them)."""

from datetime import date
from decimal import Decimal

import factory

from accounts.tests.factories import MerchantFactory
from subscriptions.models import Subscription


def make_payment_method(token: str = "tok_visa") -> dict:
    from payments.gateways.tokens import TEST_TOKENS

    card = TEST_TOKENS[token]
    return {"type": "test_token", "token": token, "card_last_four": card.last_four, "card_brand": card.brand}


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    merchant = factory.SubFactory(MerchantFactory)
    external_id = factory.Sequence(lambda n: f"sub_test_{n}")
    customer_id = factory.Sequence(lambda n: f"cus_{n}")
    customer_email = "buyer@example.com"
    plan_id = "plan_basic"
    status = Subscription.Status.ACTIVE
    billing_cycle = Subscription.Cycle.MONTHLY
    amount = Decimal("25.00")
    currency = "USD"
    start_date = factory.LazyFunction(lambda: date(2024, 1, 31))
    next_billing_date = factory.LazyAttribute(lambda o: o.start_date)
    payment_method = factory.LazyFunction(make_payment_method)
    is_test = True
