"""Idempotency-Key on the money-moving POSTs (CONTRACT section 4)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.idempotency import idempotency_begin, request_fingerprint
from core.models import IdempotencyRecord
from payments.models import Payment, Refund
from payments.tasks import idempotency_purge
from payments.tests.factories import body, charges, create

pytestmark = pytest.mark.django_db


def without_envelope(response):
    payload = json.loads(response.content)
    payload.pop("request_id")
    payload.pop("timestamp")
    return payload


def test_replay_returns_the_first_response_and_charges_once(api_client, sandbox):
    first = create(api_client, key="order-1")
    second = create(api_client, key="order-1")

    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert without_envelope(first) == without_envelope(second)
    # byte-identical apart from the envelope's request_id and timestamp
    strip = lambda r: r.content.split(b'"request_id"')[0]  # noqa: E731
    assert strip(first) == strip(second)
    assert len(charges(sandbox)) == 1
    assert Payment.objects.get().idempotency_key == "order-1"


def test_same_key_different_body_is_409(api_client, sandbox):
    create(api_client, key="k1")
    response = create(api_client, key="k1", amount="26.00")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert len(charges(sandbox)) == 1


def test_same_key_on_another_path_is_409(api_client, captured):
    create(api_client, key="shared")
    response = api_client.post(
        f"/api/v1/payments/{captured['id']}/refund", {}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert response.status_code == 409
    assert Refund.objects.count() == 0


def test_keys_are_per_merchant(api_client, other_api_client, sandbox):
    assert create(api_client, key="k").status_code == 201
    other = create(other_api_client, key="k")
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert len(charges(sandbox)) == 2


@pytest.mark.parametrize("key", ["x" * 256, "   "])
def test_bad_key_is_400(api_client, sandbox, key):
    response = create(api_client, key=key)
    assert response.status_code == 400
    assert Payment.objects.count() == 0


def test_longest_key_is_accepted(api_client, sandbox):
    assert create(api_client, key="k" * 255).status_code == 201


def test_validation_failure_is_not_stored_so_a_corrected_retry_works(api_client, sandbox):
    bad = create(api_client, key="retry-me", amount="1.001")
    assert bad.status_code == 400
    assert IdempotencyRecord.objects.count() == 0

    good = create(api_client, key="retry-me")
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good


def test_decline_is_stored_and_replayed(api_client, sandbox):
    first = create(api_client, key="d", card_token="tok_declined")
    second = create(api_client, key="d", card_token="tok_declined")

    assert first.status_code == second.status_code == 402
    assert second["Idempotent-Replayed"] == "true"
    assert without_envelope(first) == without_envelope(second)
    assert len(charges(sandbox)) == 1


def test_processor_error_with_a_stored_payment_is_replayed(api_client, sandbox):
    first = create(api_client, key="e", card_token="tok_processor_error")
    second = create(api_client, key="e", card_token="tok_processor_error")
    assert first.status_code == second.status_code == 502
    assert without_envelope(first) == without_envelope(second)
    assert Payment.objects.count() == 1


def test_in_flight_duplicate_is_409_in_progress(api_client, sandbox):
    path = "/api/v1/payments"
    idempotency_begin(
        merchant_id=api_client.merchant.pk,
        key="busy",
        fingerprint=request_fingerprint(method="POST", path=path, body=body()),
        path=path,
    )
    response = create(api_client, key="busy")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert "in progress" in response.json()["error"]["message"]
    assert charges(sandbox) == []


def test_expired_key_starts_afresh(api_client, sandbox):
    create(api_client, key="old")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = create(api_client, key="old")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert len(charges(sandbox)) == 2


def test_refund_replay_refunds_once(api_client, captured, sandbox):
    url = f"/api/v1/payments/{captured['id']}/refund"
    first = api_client.post(url, {"amount": "10.00"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")
    second = api_client.post(url, {"amount": "10.00"}, format="json", HTTP_IDEMPOTENCY_KEY="r1")

    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert Refund.objects.count() == 1
    assert len(charges(sandbox, "refundTransaction")) == 1
    assert Payment.objects.get(pk=captured["id"]).refunded_amount == 10


def test_capture_and_cancel_replays(api_client, authorized, sandbox):
    url = f"/api/v1/payments/{authorized['id']}"
    c1 = api_client.post(f"{url}/capture", {}, format="json", HTTP_IDEMPOTENCY_KEY="c")
    c2 = api_client.post(f"{url}/capture", {}, format="json", HTTP_IDEMPOTENCY_KEY="c")
    assert c1.status_code == c2.status_code == 200
    assert c2["Idempotent-Replayed"] == "true"
    refused = api_client.post(f"{url}/cancel", {}, format="json", HTTP_IDEMPOTENCY_KEY="v")
    assert refused.status_code == 409  # settled meanwhile (emulator default): not stored
    assert not IdempotencyRecord.objects.filter(key="v").exists()


def test_idempotency_purge_removes_expired_records(api_client, sandbox):
    create(api_client, key="a")
    create(api_client, key="b")
    IdempotencyRecord.objects.filter(key="a").update(expires_at=timezone.now() - timedelta(minutes=1))

    assert idempotency_purge.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]


def _stale_claim(merchant, key, path="/api/v1/payments", seconds=600, **overrides):
    """An in_progress record as a request that died mid-flight leaves it."""
    fingerprint = request_fingerprint(method="POST", path=path, body=body(**overrides))
    record, replay = idempotency_begin(merchant_id=merchant.pk, key=key, fingerprint=fingerprint, path=path)
    assert replay is False
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))
    return record


def test_fresh_in_progress_claim_is_409_and_charges_nothing(api_client, sandbox):
    _stale_claim(api_client.merchant, "busy", seconds=1)
    response = create(api_client, key="busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 0 and charges(sandbox) == []


def test_stale_claim_without_a_payment_is_taken_over_by_the_retry(api_client, sandbox):
    _stale_claim(api_client.merchant, "died-early")
    response = create(api_client, key="died-early")
    assert response.status_code == 201, response.content
    assert Payment.objects.get().idempotency_key == "died-early"
    assert len(charges(sandbox)) == 1
    replay = create(api_client, key="died-early")
    assert replay["Idempotent-Replayed"] == "true"
    assert len(charges(sandbox)) == 1


def test_stale_claim_after_the_charge_adopts_the_payment_and_charges_once(api_client, sandbox, settings):
    """The first request charged at the processor, then its worker died before answering."""
    from payments import services

    settings.AUTHORIZE_NET_READ_TIMEOUT = 0.3
    sandbox.configure(latency_ms=900)
    record = _stale_claim(api_client.merchant, "died-late", seconds=0)
    first = services.payment_create(
        merchant=api_client.merchant,
        is_test=True,
        amount=Decimal("25.99"),
        currency="USD",
        card_token="tok_visa_4242",
        customer_id="cust_1",
        idempotency_key="died-late",
    ).payment
    assert first.status == "pending"  # the reply was lost: the charge exists only at the processor
    sandbox.configure(latency_ms=0)
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(seconds=600))

    response = create(api_client, key="died-late")

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["id"] == str(first.pk) and data["status"] == "captured"
    assert Payment.objects.count() == 1
    assert len(charges(sandbox)) == 1


def test_an_unexpected_error_keeps_the_claim_so_a_retry_cannot_charge_again(api_client, sandbox, monkeypatch):
    """A 500 after the charge (say, a bug after commit) must not free the key for a blind re-run."""
    from payments.api import views

    real_response = views._created_response

    def explode(payment):
        raise RuntimeError("failure after the money moved")

    monkeypatch.setattr(views, "_created_response", explode)
    first = create(api_client, key="boom")
    assert first.status_code == 500
    assert Payment.objects.get().status == "captured" and len(charges(sandbox)) == 1

    monkeypatch.setattr(views, "_created_response", real_response)
    retry = create(api_client, key="boom")
    assert retry.status_code == 409  # still claimed: never a second charge
    assert len(charges(sandbox)) == 1

    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=1))  # the claim goes stale
    late = create(api_client, key="boom")
    assert late.status_code == 201
    assert late.json()["data"]["id"] == str(Payment.objects.get().pk)
    assert Payment.objects.count() == 1 and len(charges(sandbox)) == 1
