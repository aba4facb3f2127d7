"""factory_boy factories of the accounts app: merchants, their dashboard users and their API keys.

API keys come from the real service (``api_key_create``), so tests hold the secret exactly as a
merchant would."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from accounts.models import Merchant, MerchantUser
from accounts.services import CreatedKey, api_key_create

PASSWORD = "correct horse battery staple"  # every UserFactory user's password


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    email = factory.Sequence(lambda n: f"owner{n}@merchant.example")


class UserFactory(factory.django.DjangoModelFactory):
    """A Django user with ``PASSWORD`` (hashed through ``create_user``)."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@merchant.example")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)


class MerchantUserFactory(factory.django.DjangoModelFactory):
    """A dashboard user of a merchant."""

    class Meta:
        model = MerchantUser

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    permissions = factory.LazyFunction(lambda: ["payments:read", "api_keys:read"])


class APIKeyFactory(factory.Factory):
    """``APIKeyFactory(merchant=..., permissions=[...], **fields)`` -> a :class:`CreatedKey`
    (``.api_key``, ``.secret``, ``.key``) made by ``api_key_create``; all scopes by default."""

    class Meta:
        model = CreatedKey

    merchant = factory.SubFactory(MerchantFactory)
    name = "test key"
    permissions = factory.LazyFunction(lambda: ["*"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return api_key_create(**kwargs)
