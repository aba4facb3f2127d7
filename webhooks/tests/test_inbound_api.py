"""The Authorize.Net callback: signature verification on the raw bytes, storage, deduplication."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from webhooks.models import InboundEvent

URL = "/api/v1/webhooks/authorize-net"
EVENTS_URL = "/api/v1/webhooks/authorize-net/events"


def notification(**overrides) -> bytes:
    body = {
        "notificationId": str(uuid.uuid4()),
        "eventType": "net.authorize.payment.authcapture.created",
        "eventDate": "2026-03-08T17:35:37.155999Z",
        "webhookId": str(uuid.uuid4()),
        "payload": {
            "responseCode": 1,
            "authCode": "8VTPDC",
            "avsResponse": "Y",
            "authAmount": 10.00,
            "entityName": "transaction",
            "id": "60019392075",
        },
    }
    body.update(overrides)
    # Authorize.Net sends "10.00" verbatim; re-serialising would change the bytes, so build text.
    return json.dumps(body, separators=(",", ":")).replace('"authAmount":10.0', '"authAmount":10.00').encode()


def sign(body: bytes, key: str | None = None) -> str:
    key = settings.AUTHORIZE_NET_SIGNATURE_KEY if key is None else key
    return "sha512=" + hmac.new(key.encode(), body, hashlib.sha512).hexdigest().upper()


def post(client, body: bytes, signature: str | None, **extra):
    headers = {"HTTP_X_ANET_SIGNATURE": signature} if signature is not None else {}
    return client.generic("POST", URL, body, content_type="application/json", **headers, **extra)


@pytest.fixture
def client():
    return APIClient()


def test_valid_notification_is_stored_and_acknowledged(db, client):
    body = notification()
    response = post(client, body, sign(body), HTTP_X_API_KEY="ek_test_nope.nope", HTTP_COOKIE="sessionid=abc")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["received"] is True and data["duplicate"] is False
    event = InboundEvent.objects.get(pk=data["id"])
    assert event.signature_valid is True
    assert event.status == "pending"
    assert event.event_id == json.loads(body)["notificationId"]
    assert event.event_type == "net.authorize.payment.authcapture.created"
    assert event.source == "authorize_net"
    assert event.raw_body.encode() == body  # byte-exact, "10.00" kept
    assert event.payload["payload"]["id"] == "60019392075"
    assert event.source_ip == "127.0.0.1"
    assert event.signature == sign(body)
    stored_headers = {k.lower() for k in event.headers}
    assert "x-anet-signature" in stored_headers
    assert not stored_headers & {"x-api-key", "cookie", "authorization"}


def test_lower_case_hex_and_prefix_are_accepted(db, client):
    body = notification()
    assert post(client, body, sign(body).lower()).status_code == 200
    body = notification()
    assert post(client, body, "SHA512=" + sign(body)[7:]).status_code == 200
    assert InboundEvent.objects.filter(signature_valid=True).count() == 2


def _bad_signatures(body: bytes) -> dict[str, str | None]:
    good = sign(body)
    return {
        "missing": None,
        "empty": "",
        "garbage": "sha512=not-hex-at-all",
        "truncated": good[:70],
        "prefix only": "sha512=",
        "no prefix": good[7:],
        "wrong prefix": "sha256=" + good[7:],
        "wrong key": sign(body, key="some-other-signature-key"),
        "hex-decoded key": "sha512=" + hmac.new(b"\x00" * 8, body, hashlib.sha512).hexdigest().upper(),
        "body changed": sign(body + b"\n"),
        "non-ascii": "sha512=" + "é" * 128,
    }


@pytest.mark.parametrize("case", list(_bad_signatures(b"x")))
def test_bad_signatures_are_401_and_nothing_is_processed(db, client, case):
    body = notification()
    response = post(client, body, _bad_signatures(body)[case])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not InboundEvent.objects.filter(signature_valid=True).exists()
    forensic = InboundEvent.objects.get()
    assert forensic.signature_valid is False
    assert forensic.status == "ignored"
    assert forensic.processed_at is None


def test_forged_body_cannot_squat_a_real_notification_id(db, client):
    body = notification()
    assert post(client, body, "sha512=" + "0" * 128).status_code == 401
    response = post(client, body, sign(body))
    assert response.status_code == 200
    assert response.json()["data"]["duplicate"] is False


def test_rejected_bodies_are_stored_truncated_and_capped(db, client, settings):
    settings.WEBHOOK_INBOUND_INVALID_MAX_PER_HOUR = 3
    settings.WEBHOOK_INBOUND_INVALID_BODY_BYTES = 100
    big = notification(padding="y" * 5000)
    for _ in range(6):
        assert post(client, big, "sha512=" + "a" * 128).status_code == 401
    rows = InboundEvent.objects.filter(signature_valid=False)
    assert rows.count() == 3
    assert all(len(r.raw_body) <= 100 for r in rows)
    assert all(r.metadata["truncated"] for r in rows)


def test_oversized_body_is_refused_unstored(db, client, settings):
    settings.WEBHOOK_INBOUND_MAX_BODY_BYTES = 1000
    body = notification(padding="z" * 2000)
    response = post(client, body, sign(body))
    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"eventType":"net.authorize.payment.void.created"}'])
def test_signed_but_malformed_body_is_400(db, client, body):
    response = post(client, body, sign(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not InboundEvent.objects.filter(signature_valid=True).exists()


def test_repeated_notification_id_is_acknowledged_and_not_stored_twice(db, client):
    body = notification()
    first = post(client, body, sign(body))
    second = post(client, body, sign(body))
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert second.json()["data"]["duplicate"] is True
    assert InboundEvent.objects.filter(signature_valid=True).count() == 1


def test_callback_needs_no_api_key_but_the_other_routes_do(db, client):
    assert client.get("/api/v1/webhooks/authorize-net/events").status_code == 401
    assert client.post("/api/v1/webhooks/authorize-net/test", {}, format="json").status_code == 401
    assert client.post(f"/api/v1/webhooks/authorize-net/replay/{uuid.uuid4()}").status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_duplicates_are_stored_and_processed_once(anet_sandbox):
    """Eager Celery runs processing on commit. The processor fails every lookup here, so each
    processing run adds one to ``retry_count``: the stored row counts the runs."""
    anet_sandbox.configure(fail_mode="http500")
    body = notification()
    signature = sign(body)
    barrier = threading.Barrier(6)
    results = []

    def send():
        try:
            barrier.wait()
            response = post(APIClient(), body, signature)
            results.append((response.status_code, response.json()["data"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [code for code, _ in results] == [200] * 6
    assert len({data["id"] for _, data in results}) == 1
    assert sum(1 for _, data in results if not data["duplicate"]) == 1
    event = InboundEvent.objects.get(signature_valid=True)
    # Processed exactly once: the single run asked the processor, failed, and scheduled one retry.
    assert event.status == "pending"
    assert event.retry_count == 1
    assert "processor lookup failed" in event.error_message
    assert InboundEvent.objects.count() == 1


def test_inbound_results_are_counted(db, client):
    from prometheus_client import REGISTRY

    def count(result):
        return REGISTRY.get_sample_value("easypay_webhook_inbound_total", {"result": result}) or 0.0

    before = {r: count(r) for r in ("accepted", "duplicate", "invalid_signature")}
    body = notification()
    post(client, body, sign(body))
    post(client, body, sign(body))
    post(client, body, "sha512=00")
    assert {r: count(r) - before[r] for r in before} == {"accepted": 1, "duplicate": 1, "invalid_signature": 1}


def test_the_inbound_routes_are_audited_as_the_webhooks_service(db, client, api_client):
    """The code moved to payments.inbound; the audit trail still files these routes under webhooks."""
    from audit.models import AuditLog

    body = notification()
    assert post(client, body, sign(body), HTTP_X_REQUEST_ID="inbound-audit-1").status_code == 200
    assert api_client.get(EVENTS_URL, HTTP_X_REQUEST_ID="inbound-audit-2").status_code == 200
    assert AuditLog.objects.get(correlation_id="inbound-audit-1").service_name == "webhooks"
    assert AuditLog.objects.get(correlation_id="inbound-audit-2").service_name == "webhooks"
