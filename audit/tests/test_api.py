"""Every /api/v1/ request leaves an audit row; GET /api/v1/audit-logs shows a merchant its own."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog


@pytest.mark.django_db
def test_authenticated_request_leaves_a_row_with_actor_status_and_correlation_id(api_client):
    response = api_client.get("/api/v1/audit-logs?limit=5", HTTP_X_REQUEST_ID="corr-123", HTTP_USER_AGENT="pytest/1")
    assert response.status_code == 200
    row = AuditLog.objects.get(correlation_id="corr-123")
    assert row.actor_type == "api_key"
    assert row.actor_id == api_client.api_key.api_key.key_id
    assert row.merchant_id == api_client.merchant.pk
    assert row.status_code == 200
    assert row.action == "audit-logs.list"
    assert row.resource_type == "audit-log"
    assert row.service_name == "audit"
    assert row.user_agent == "pytest/1"
    assert row.ip_address == "127.0.0.1"
    assert row.duration_ms is not None
    assert row.request_data["query"] == {"limit": "5"}
    # The credential header is recorded as sent, never its value.
    assert row.request_data["headers"]["X-API-Key"] == "[REDACTED]"
    assert api_client.api_key.secret not in json.dumps(row.request_data)


@pytest.mark.django_db
def test_refused_request_is_audited_as_anonymous_with_the_claimed_key_id(anon_client):
    response = anon_client.get(
        "/api/v1/audit-logs", HTTP_X_API_KEY="ek_test_0123456789abcdef.wrongsecret", HTTP_X_REQUEST_ID="bad-1"
    )
    assert response.status_code == 401
    row = AuditLog.objects.get(correlation_id="bad-1")
    assert row.actor_type == "anonymous"
    assert row.actor_id == "ek_test_0123456789abcdef"
    assert row.merchant_id is None
    assert row.status_code == 401
    assert "wrongsecret" not in json.dumps(row.request_data)


@pytest.mark.django_db
def test_post_body_is_stored_redacted(api_client):
    body = {"name": "k", "permissions": ["payments:read"], "password": "hunter2", "card_number": "4111111111111111"}
    api_client.post("/api/v1/audit-logs", body, format="json", HTTP_X_REQUEST_ID="post-1")
    row = AuditLog.objects.get(correlation_id="post-1")
    assert row.status_code == 403  # read-only endpoint: no write scope exists
    assert row.request_data["body"]["password"] == "[REDACTED]"
    assert row.request_data["body"]["card_number"] == "[REDACTED]"
    text = json.dumps(row.request_data)
    assert "hunter2" not in text
    assert "4111111111111111" not in text


@pytest.mark.django_db
def test_non_api_paths_are_not_audited(client):
    client.get("/health")
    assert AuditLog.objects.count() == 0


@pytest.mark.django_db
def test_list_is_merchant_scoped_and_filterable(api_client, other_api_client):
    mine = AuditLog.objects.create(
        service_name="payments",
        action="payments.refund",
        resource_type="payment",
        resource_id="p1",
        merchant=api_client.merchant,
        correlation_id="c-1",
    )
    AuditLog.objects.create(service_name="payments", action="payments.create", merchant=other_api_client.merchant)
    response = api_client.get("/api/v1/audit-logs", {"resource_type": "payment", "resource_id": "p1"})
    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["data"]] == [str(mine.pk)]
    assert body["pagination"]["limit"] == 20
    assert body["data"][0]["merchant_id"] == str(api_client.merchant.pk)
    assert body["data"][0]["correlation_id"] == "c-1"

    assert api_client.get("/api/v1/audit-logs", {"action": "payments.create"}).json()["data"] == []
    future = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert api_client.get("/api/v1/audit-logs", {"created_after": future}).json()["data"] == []
    assert (
        len(api_client.get("/api/v1/audit-logs", {"created_before": future, "correlation_id": "c-1"}).json()["data"])
        == 1
    )
    assert api_client.get("/api/v1/audit-logs", {"created_after": "not-a-date"}).status_code == 400


@pytest.mark.django_db
def test_list_paginates_with_a_cursor(api_client):
    for n in range(3):
        AuditLog.objects.create(
            service_name="t",
            action=f"a.{n}",
            merchant=api_client.merchant,
            created_at=timezone.now() - timedelta(hours=n + 1),
        )
    first = api_client.get("/api/v1/audit-logs", {"limit": 2, "action__in": "x"}).json()
    # Rows for the requests themselves are newer than the seeded ones; page through everything.
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api_client.get("/api/v1/audit-logs", params).json()
        seen.extend(row["id"] for row in page["data"])
        cursor = page["pagination"]["next_cursor"]
        if not page["pagination"]["has_more"]:
            break
    assert len(seen) == len(set(seen))
    assert first["pagination"]["has_more"] is True
    assert {f"a.{n}" for n in range(3)} <= set(AuditLog.objects.filter(pk__in=seen).values_list("action", flat=True))


@pytest.mark.django_db
def test_detail_is_404_for_another_merchant_or_a_malformed_id(api_client, other_api_client):
    theirs = AuditLog.objects.create(service_name="t", action="x", merchant=other_api_client.merchant)
    mine = AuditLog.objects.create(service_name="t", action="x", merchant=api_client.merchant)
    assert api_client.get(f"/api/v1/audit-logs/{mine.pk}").json()["data"]["id"] == str(mine.pk)
    assert api_client.get(f"/api/v1/audit-logs/{theirs.pk}").status_code == 404
    assert api_client.get("/api/v1/audit-logs/not-a-uuid").status_code == 404
    assert api_client.get(f"/api/v1/audit-logs/{uuid.uuid4()}").json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_audit_read_scope_is_required(make_api_key, merchant):
    from rest_framework.test import APIClient

    created = make_api_key(merchant=merchant, permissions=["payments:read"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created.key)
    response = client.get("/api/v1/audit-logs")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_a_list_response_is_recorded_as_the_ids_it_returned(api_client):
    seeded = AuditLog.objects.create(service_name="t", action="x", merchant=api_client.merchant)
    api_client.get("/api/v1/audit-logs", HTTP_X_REQUEST_ID="list-1")
    row = AuditLog.objects.get(correlation_id="list-1")
    assert row.response_data["count"] == 1
    assert row.response_data["ids"] == [str(seeded.pk)]
    assert row.response_data["pagination"]["has_more"] is False


@pytest.mark.django_db
def test_token_exchange_and_jwt_calls_are_audited_without_credentials(api_client, anon_client):
    created = api_client.api_key
    response = anon_client.post(
        "/api/v1/auth/tokens",
        {"key_id": created.api_key.key_id, "key_secret": created.secret},
        format="json",
        HTTP_X_REQUEST_ID="tok-1",
    )
    assert response.status_code in (200, 201), response.content
    tokens = response.json()["data"]
    exchange = AuditLog.objects.get(correlation_id="tok-1")
    stored = json.dumps([exchange.request_data, exchange.response_data])
    for secret in (created.secret, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in stored
    assert exchange.request_data["body"]["key_id"] == created.api_key.key_id
    assert exchange.request_data["body"]["key_secret"] == "[REDACTED]"

    anon_client.get(
        "/api/v1/audit-logs", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}", HTTP_X_REQUEST_ID="jwt-1"
    )
    row = AuditLog.objects.get(correlation_id="jwt-1")
    assert row.actor_type == "jwt"
    assert row.merchant_id == api_client.merchant.pk
    assert row.status_code == 200
    assert tokens["access_token"] not in json.dumps(row.request_data)


@pytest.mark.django_db
def test_payment_create_and_refund_rows(api_client, anet_sandbox):
    body = {
        "amount": "25.99",
        "currency": "USD",
        "customer_id": "cust_1",
        "customer_email": "buyer@example.com",
        "card_token": "tok_visa_4242",
    }
    created = api_client.post("/api/v1/payments", body, format="json", HTTP_X_REQUEST_ID="pay-1")
    assert created.status_code == 201, created.content
    payment_id = created.json()["data"]["id"]
    row = AuditLog.objects.get(correlation_id="pay-1")
    assert (row.action, row.resource_type, row.resource_id, row.status_code) == (
        "payments.create",
        "payment",
        payment_id,
        201,
    )
    assert row.request_data["body"]["card_token"] == "[REDACTED]"
    assert row.request_data["body"]["amount"] == "25.99"
    assert row.response_data["status"] == "captured"
    stored = json.dumps([row.request_data, row.response_data])
    assert "tok_visa_4242" not in stored
    assert "buyer@example.com" not in stored

    api_client.post(f"/api/v1/payments/{payment_id}/refund", {"amount": "5.00"}, format="json", HTTP_X_REQUEST_ID="r-1")
    refund_row = AuditLog.objects.get(correlation_id="r-1")
    assert (refund_row.action, refund_row.resource_id, refund_row.status_code) == ("payments.refund", payment_id, 200)
    listed = api_client.get("/api/v1/audit-logs", {"resource_type": "payment", "resource_id": payment_id}).json()
    assert [r["action"] for r in listed["data"]] == ["payments.refund", "payments.create"]


@pytest.mark.django_db
def test_a_read_is_recorded_as_the_id_and_status_it_returned_a_write_in_full(api_client, anet_sandbox):
    body = {"amount": "12.50", "currency": "USD", "customer_email": "reader@example.com", "card_token": "tok_visa"}
    created = api_client.post("/api/v1/payments", body, format="json", HTTP_X_REQUEST_ID="w-1")
    assert created.status_code == 201, created.content
    payment_id = created.json()["data"]["id"]
    write = AuditLog.objects.get(correlation_id="w-1")
    # A write keeps the whole (redacted) object it answered.
    assert write.response_data["amount"] == "12.50"
    assert write.response_data["customer_email"] != "reader@example.com"
    assert write.response_data["customer_email"].startswith("[PII:")

    for request_id in ("r-1", "r-2"):  # cache miss, then cache hit: recorded alike
        assert api_client.get(f"/api/v1/payments/{payment_id}", HTTP_X_REQUEST_ID=request_id).status_code == 200
        read = AuditLog.objects.get(correlation_id=request_id)
        assert (read.action, read.resource_id, read.status_code) == ("payments.retrieve", payment_id, 200)
        assert read.response_data == {"id": payment_id, "status": "captured"}

    api_client.get("/api/v1/payments/not-a-uuid", HTTP_X_REQUEST_ID="r-404")
    refused = AuditLog.objects.get(correlation_id="r-404")
    assert refused.status_code == 404
    assert refused.response_data["error"]["code"] == "not_found"
