"""Fixtures of the accounts tests: merchant users, clients for a given credential, token helpers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts import ratelimit
from accounts.tests.factories import MerchantUserFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_limiter():
    ratelimit.reset_state()
    yield
    ratelimit.reset_state()


@pytest.fixture
def client_for():
    """``client_for(created_key)`` / ``client_for(bearer=token)`` -> an APIClient sending that credential."""

    def _make(created=None, *, bearer=None, **extra):
        client = APIClient(**extra)
        if created is not None:
            client.credentials(HTTP_X_API_KEY=created.key)
        if bearer is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer}")
        return client

    return _make


@pytest.fixture
def merchant_user(merchant):
    """A dashboard user of ``merchant`` holding payments:read and api_keys:read."""
    user = UserFactory(username="alice", email="alice@merchant.example")
    return MerchantUserFactory(user=user, merchant=merchant, permissions=["payments:read", "api_keys:read"])


@pytest.fixture
def obtain(anon_client):
    """``obtain(created_key)`` or ``obtain(username=, password=)`` -> the token response's data."""

    def _obtain(created=None, **body):
        if created is not None:
            body = {"key_id": created.api_key.key_id, "key_secret": created.secret}
        response = anon_client.post("/api/v1/auth/tokens", body, format="json")
        assert response.status_code == 200, response.json()
        return response.json()["data"]

    return _obtain
