"""factory_boy factories for merchants. API keys come from the real service (see conftest's
``make_api_key``), so tests hold the secret exactly as a merchant would."""

import factory

from accounts.models import Merchant


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    email = factory.Sequence(lambda n: f"owner{n}@merchant.example")
