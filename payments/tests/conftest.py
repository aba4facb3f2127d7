"""Fixtures for the payments tests on top of the Authorize.Net emulator (helpers and factories:
``payments.tests.factories``)."""

from __future__ import annotations

import pytest

from accounts.tests.factories import MerchantFactory
from payments.tests.factories import create


@pytest.fixture
def sandbox(anet_sandbox):
    return anet_sandbox


@pytest.fixture
def captured(api_client, sandbox):
    """A captured (and, by the emulator's default, already settled) 100.00 USD payment's data."""
    response = create(api_client, amount="100.00")
    assert response.status_code == 201, response.content
    return response.json()["data"]


@pytest.fixture
def authorized(api_client, sandbox):
    response = create(api_client, amount="50.00", capture=False)
    assert response.status_code == 201, response.content
    return response.json()["data"]


@pytest.fixture
def live_client(make_api_key):
    from rest_framework.test import APIClient

    merchant = MerchantFactory()
    created = make_api_key(merchant=merchant, mode="live")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created.key)
    client.merchant = merchant
    return client
