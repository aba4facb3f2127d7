"""Helpers of the security tests (and of tests/hostile, tests/fuzz): objects of a merchant created
through the API the way a merchant would, and the contract's error envelope checked."""

from __future__ import annotations

from rest_framework.test import APIClient

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


def key_client(key) -> APIClient:
    """An APIClient sending this created key (``.merchant`` and ``.api_key`` set for the test)."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.key)
    client.merchant = key.api_key.merchant
    client.api_key = key
    return client


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
