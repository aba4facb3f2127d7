"""Idempotency-Key on every POST that creates an object: subscriptions, webhook endpoints, API keys.

One decorator (core.idempotency.idempotent) serves them all, with the payments' semantics: the same
key and body within 24 h replays the first answer (byte for byte, header Idempotent-Replayed: true),
another body is 409 idempotency_conflict, concurrent duplicates make one object. Secrets in a creation
answer are shown once: the replay answers them as null.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import APIKey
from core.models import IdempotencyRecord
from subscriptions.models import Subscription
from webhooks.models import WebhookEndpoint

SUB_URL = "/api/v1/subscriptions"
SUB_BODY = {
    "customer_id": "cus_idem",
    "plan_id": "plan_pro",
    "amount": "29.99",
    "currency": "USD",
    "billing_cycle": "monthly",
    "card_token": "tok_visa",
}


def _data_bytes(response) -> bytes:
    """The response body without the per-response envelope fields (request_id, timestamp)."""
    body = json.loads(response.content)
    body.pop("request_id", None)
    body.pop("timestamp", None)
    return json.dumps(body, sort_keys=False).encode()


@pytest.mark.django_db
def test_a_retried_subscription_create_replays_and_creates_one(api_client):
    first = api_client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert first.status_code == 201, first.content
    again = api_client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _data_bytes(again) == _data_bytes(first)
    assert Subscription.objects.filter(merchant=api_client.merchant).count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_subscription_body_is_409(api_client):
    assert api_client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="sub-2").status_code == 201
    other = api_client.post(SUB_URL, {**SUB_BODY, "amount": "30.00"}, format="json", HTTP_IDEMPOTENCY_KEY="sub-2")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert Subscription.objects.filter(merchant=api_client.merchant).count() == 1


@pytest.mark.django_db
def test_a_rejected_subscription_body_keeps_the_key_free_for_a_corrected_retry(api_client):
    bad = api_client.post(SUB_URL, {**SUB_BODY, "amount": "-1"}, format="json", HTTP_IDEMPOTENCY_KEY="sub-3")
    assert bad.status_code == 400
    good = api_client.post(SUB_URL, {**SUB_BODY, "amount": "-1"}, format="json", HTTP_IDEMPOTENCY_KEY="sub-3")
    assert good.status_code == 400  # not a replay of a stored 400: run again, same answer
    assert "Idempotent-Replayed" not in good


@pytest.mark.django_db
def test_keys_are_per_merchant(api_client, other_merchant):
    from accounts.services import api_key_create

    other = APIClient()
    other.credentials(HTTP_X_API_KEY=api_key_create(merchant=other_merchant, name="o", permissions=["*"]).key)
    assert api_client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    theirs = other.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs
    assert Subscription.objects.filter(merchant=other_merchant).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_identical_subscription_posts_make_one_subscription(api_client):
    n = 8
    barrier = threading.Barrier(n)
    results: list = [None] * n
    key = api_client.api_key.key

    def worker(index):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key)
        try:
            barrier.wait(timeout=10)
            results[index] = client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="race-1")
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None and not isinstance(r, Exception) for r in results), results
    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 409}, [r.content for r in results]
    created = Subscription.objects.filter(merchant=api_client.merchant)
    assert created.count() == 1
    ids = {r.json()["data"]["id"] for r in results if r.status_code == 201}
    assert ids == {str(created.get().pk)}
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "idempotency_conflict"
    # Once the first has finished, a retry is a replay of it.
    late = api_client.post(SUB_URL, SUB_BODY, format="json", HTTP_IDEMPOTENCY_KEY="race-1")
    assert late.status_code == 201 and late["Idempotent-Replayed"] == "true"
    assert late.json()["data"]["id"] == str(created.get().pk)


@pytest.mark.django_db
def test_a_retried_webhook_endpoint_create_makes_one_and_never_shows_the_secret_again(api_client):
    body = {"url": "https://hooks.example.com/easypay", "events": ["*"]}
    first = api_client.post("/api/v1/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="wh-1")
    assert first.status_code == 201, first.content
    secret = first.json()["data"]["secret"]
    assert secret.startswith("whsec_")
    again = api_client.post("/api/v1/webhooks", body, format="json", HTTP_IDEMPOTENCY_KEY="wh-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    replayed = again.json()["data"]
    assert replayed["id"] == first.json()["data"]["id"]
    assert replayed["secret"] is None
    assert {k: v for k, v in replayed.items() if k != "secret"} == {
        k: v for k, v in first.json()["data"].items() if k != "secret"
    }
    assert WebhookEndpoint.objects.filter(merchant=api_client.merchant).count() == 1
    assert secret not in IdempotencyRecord.objects.get(key="wh-1").response_body


@pytest.mark.django_db
def test_a_retried_api_key_create_makes_one_key_and_the_secret_is_not_stored_again(api_client):
    before = APIKey.objects.filter(merchant=api_client.merchant).count()
    body = {"name": "deploy bot"}
    first = api_client.post("/api/v1/auth/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201, first.content
    created = first.json()["data"]
    assert created["key"] and created["key_secret"]
    again = api_client.post("/api/v1/auth/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    replayed = again.json()["data"]
    assert replayed["id"] == created["id"]
    assert replayed["key"] is None and replayed["key_secret"] is None
    assert APIKey.objects.filter(merchant=api_client.merchant).count() == before + 1
    stored = IdempotencyRecord.objects.get(key="key-1").response_body
    assert created["key_secret"] not in stored and created["key"] not in stored
