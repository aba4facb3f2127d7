"""Fixtures for the payments tests: payment helpers on top of the Authorize.Net emulator."""

from __future__ import annotations

import pytest

from accounts.tests.factories import MerchantFactory

PAYMENT_BODY = {
    "amount": "25.99",
    "currency": "USD",
    "customer_id": "cust_1",
    "customer_email": "customer@example.com",
    "customer_name": "Jane Doe",
    "card_token": "tok_visa_4242",
    "description": "Order 1",
    "metadata": {"order_id": "o_1"},
}


def body(**overrides):
    data = dict(PAYMENT_BODY)
    for key, value in overrides.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def create(client, *, key=None, **overrides):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/payments", body(**overrides), format="json", **headers)


def charges(sandbox, *types):
    types = types or ("authCaptureTransaction", "authOnlyTransaction")
    return [tx for tx in sandbox.state.transactions.values() if tx.transaction_type in types]


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
