"""Fixtures of the security tests: two merchants with API clients, objects of the first one created
through the API (against the Authorize.Net emulator), and an egress guard on every test so no
webhook delivery or SSRF probe ever sends a packet beyond loopback."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.fuzz.egress import EgressGuard

HIGH_LIMIT = 1_000_000
PAYMENT = {
    "amount": "25.00",
    "currency": "USD",
    "customer_id": "cust_sec",
    "customer_email": "owner@example.com",
    "customer_name": "Owner Customer",
    "card_token": "tok_visa_4242",
    "description": "security test",
    "metadata": {"order": "o-1"},
}
SUBSCRIPTION = {
    "customer_id": "cust_sec",
    "plan_id": "plan_gold",
    "amount": "19.99",
    "currency": "USD",
    "billing_cycle": "monthly",
    "card_token": "tok_visa",
}


@pytest.fixture(autouse=True)
def egress_guard(monkeypatch) -> EgressGuard:
    return EgressGuard().install(monkeypatch)


def _client(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.key)
    client.merchant = key.api_key.merchant
    client.api_key = key
    return client


@pytest.fixture
def owner(merchant, make_api_key) -> APIClient:
    """Merchant A: all scopes, limits no test reaches."""
    return _client(
        make_api_key(
            merchant=merchant,
            name="owner",
            rate_limit_per_minute=HIGH_LIMIT,
            rate_limit_per_hour=HIGH_LIMIT,
            rate_limit_per_day=HIGH_LIMIT,
        )
    )


@pytest.fixture
def intruder(other_merchant, make_api_key) -> APIClient:
    """Merchant B: all scopes too; must never see or touch A's objects."""
    return _client(
        make_api_key(
            merchant=other_merchant,
            name="intruder",
            rate_limit_per_minute=HIGH_LIMIT,
            rate_limit_per_hour=HIGH_LIMIT,
            rate_limit_per_day=HIGH_LIMIT,
        )
    )


def create_payment(client, **overrides) -> dict:
    response = client.post("/api/v1/payments", {**PAYMENT, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def create_subscription(client, **overrides) -> dict:
    response = client.post("/api/v1/subscriptions", {**SUBSCRIPTION, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def create_endpoint(client, url="https://hooks.example.com/easypay", **overrides) -> dict:
    response = client.post("/api/v1/webhooks", {"url": url, "events": ["*"], **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The contract's error envelope with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= {"error", "request_id", "timestamp"}, body
    assert set(body["error"]) >= {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body
