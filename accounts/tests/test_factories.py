"""The accounts factories make rows the services would: a key that authenticates, a user who logs in."""

import pytest
from rest_framework.test import APIClient

from accounts.models import APIKey
from accounts.tests.factories import PASSWORD, APIKeyFactory, MerchantUserFactory

pytestmark = pytest.mark.django_db


def test_api_key_factory_makes_a_key_that_authenticates_for_its_merchant():
    created = APIKeyFactory(permissions=["payments:read"])
    assert APIKey.objects.get(pk=created.api_key.pk).permissions == ["payments:read"]
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created.key)
    assert client.get("/api/v1/payments").status_code == 200
    client.credentials(HTTP_X_API_KEY=created.key[:-1] + ("x" if created.key[-1] != "x" else "y"))
    assert client.get("/api/v1/payments").status_code == 401


def test_merchant_user_factory_user_logs_in_with_the_shared_password():
    membership = MerchantUserFactory()
    body = {"username": membership.user.username, "password": PASSWORD}
    response = APIClient().post("/api/v1/auth/tokens", body, format="json")
    assert response.status_code == 200, response.content
    assert membership.merchant.members.get().pk == membership.pk
    wrong = APIClient().post("/api/v1/auth/tokens", {**body, "password": PASSWORD + "!"}, format="json")
    assert wrong.status_code == 401
