"""Inbound notifications end to end: the emulator's signed webhooks -> our callback -> the payment
refreshed from the processor (never from the notification itself)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from payments.inbound import tasks
from payments.models import Payment
from webhooks import signing
from webhooks.models import InboundEvent

CALLBACK = "/api/v1/webhooks/authorize-net"


@pytest.fixture
def sandbox(anet_sandbox, receiver):
    """The emulator with its webhooks pointed at a capturing receiver (we replay them at will)."""
    anet_sandbox.configure(webhook_url=receiver.url)
    anet_sandbox.captured = receiver
    return anet_sandbox


def notifications(sandbox, event_type: str | None = None):
    assert sandbox.webhooks.flush(timeout=5)
    found = [r for r in sandbox.captured.requests if event_type is None or r.json()["eventType"] == event_type]
    return found


def deliver(request, django_capture_on_commit_callbacks, *, body=None, signature=None):
    """POST a captured notification to our callback, byte for byte, and run what its commit enqueues."""
    raw = body if body is not None else request.body
    sig = signature if signature is not None else request.headers["X-ANET-Signature"]
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().generic(
            "POST", CALLBACK, raw, content_type="application/json", HTTP_X_ANET_SIGNATURE=sig
        )
    return response


def forged(payload: dict) -> tuple[bytes, str]:
    """A correctly signed notification that says something the processor does not confirm."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return raw, signing.anet_signature_header(raw, settings.AUTHORIZE_NET_SIGNATURE_KEY)


def pay(api_client, **body):
    data = {"amount": "40.00", "currency": "USD", "card_token": "tok_visa", **body}
    response = api_client.post("/api/v1/payments", data, format="json")
    assert response.status_code in (201, 402), response.content
    return Payment.objects.get(pk=response.json()["data"]["id"])


def test_held_payment_approved_at_the_processor_is_captured_through_the_webhook(
    api_client, sandbox, django_capture_on_commit_callbacks
):
    payment = pay(api_client, card_token="tok_held")
    assert payment.status == "held"
    sandbox.state.review(payment.processor_transaction_id, "approve")
    [note] = notifications(sandbox, "net.authorize.payment.fraud.approved")

    response = deliver(note, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    event = InboundEvent.objects.get(pk=response.json()["data"]["id"])
    assert event.status == "processed", event.error_message
    assert event.merchant_id == payment.merchant_id
    assert event.metadata["payment_id"] == str(payment.pk)
    payment.refresh_from_db()
    assert payment.status == "captured"
    assert event.metadata["payment_status_before"] == "held"
    assert event.metadata["payment_status_after"] == "captured"


def test_a_notification_alone_never_moves_state(api_client, sandbox, django_capture_on_commit_callbacks):
    payment = pay(api_client, card_token="tok_held")
    raw, sig = forged(
        {
            "notificationId": "forged-approval-1",
            "eventType": "net.authorize.payment.fraud.approved",
            "payload": {"entityName": "transaction", "id": payment.processor_transaction_id, "responseCode": 1},
        }
    )
    response = deliver(None, django_capture_on_commit_callbacks, body=raw, signature=sig)
    assert response.status_code == 200
    assert InboundEvent.objects.get(event_id="forged-approval-1").status == "processed"
    payment.refresh_from_db()
    assert payment.status == "held"  # the processor still holds it


def test_out_of_order_notification_does_not_roll_back(api_client, sandbox, django_capture_on_commit_callbacks):
    payment = pay(api_client)
    assert payment.status == "captured"
    [created] = notifications(sandbox, "net.authorize.payment.authcapture.created")
    refund = api_client.post(f"/api/v1/payments/{payment.pk}/refund", {}, format="json")
    assert refund.status_code == 200, refund.content
    [refunded_note] = notifications(sandbox, "net.authorize.payment.refund.created")

    # The refund's notification first, then the older capture's one, arriving late.
    assert deliver(refunded_note, django_capture_on_commit_callbacks).status_code == 200
    assert deliver(created, django_capture_on_commit_callbacks).status_code == 200

    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.refunded_amount == payment.captured_amount
    refund_event = InboundEvent.objects.get(event_id=refunded_note.json()["notificationId"])
    late_event = InboundEvent.objects.get(event_id=created.json()["notificationId"])
    assert refund_event.status == late_event.status == "processed"
    assert refund_event.metadata["payment_id"] == late_event.metadata["payment_id"] == str(payment.pk)


def test_duplicate_delivery_is_processed_once(api_client, sandbox, django_capture_on_commit_callbacks):
    pay(api_client)
    [note] = notifications(sandbox, "net.authorize.payment.authcapture.created")
    first = deliver(note, django_capture_on_commit_callbacks)
    processed_at = InboundEvent.objects.get().processed_at
    second = deliver(note, django_capture_on_commit_callbacks)
    assert second.json()["data"]["duplicate"] is True
    event = InboundEvent.objects.get()
    assert str(event.pk) == first.json()["data"]["id"]
    assert event.processed_at == processed_at  # not processed again


def test_replay_is_idempotent(api_client, sandbox, django_capture_on_commit_callbacks):
    payment = pay(api_client)
    [note] = notifications(sandbox, "net.authorize.payment.authcapture.created")
    event_id = deliver(note, django_capture_on_commit_callbacks).json()["data"]["id"]
    before = Payment.objects.get(pk=payment.pk)

    for n in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.post(f"/api/v1/webhooks/authorize-net/replay/{event_id}")
        assert response.status_code == 200
        event = InboundEvent.objects.get(pk=event_id)
        assert event.status == "processed" and event.metadata["replayed"] == n

    after = Payment.objects.get(pk=payment.pk)
    assert (after.status, after.captured_amount, after.refunded_amount) == (
        before.status,
        before.captured_amount,
        before.refunded_amount,
    )
    # The notification id works as the path parameter too.
    assert api_client.post(f"/api/v1/webhooks/authorize-net/replay/{note.json()['notificationId']}").status_code == 200


def test_replay_of_another_merchants_notification_is_404(
    api_client, other_api_client, sandbox, django_capture_on_commit_callbacks
):
    pay(api_client)
    [note] = notifications(sandbox, "net.authorize.payment.authcapture.created")
    event_id = deliver(note, django_capture_on_commit_callbacks).json()["data"]["id"]
    assert other_api_client.post(f"/api/v1/webhooks/authorize-net/replay/{event_id}").status_code == 404
    assert InboundEvent.objects.get(pk=event_id).metadata.get("replayed") is None


def test_unknown_transaction_is_ignored_with_a_reason(db, sandbox, django_capture_on_commit_callbacks):
    raw, sig = forged(
        {
            "notificationId": "n-unknown",
            "eventType": "net.authorize.payment.authcapture.created",
            "payload": {"entityName": "transaction", "id": "99999999999"},
        }
    )
    assert deliver(None, django_capture_on_commit_callbacks, body=raw, signature=sig).status_code == 200
    event = InboundEvent.objects.get(event_id="n-unknown")
    assert event.status == "ignored"
    assert "99999999999" in event.error_message


def test_non_transaction_entities_are_ignored(db, sandbox, django_capture_on_commit_callbacks):
    raw, sig = forged(
        {
            "notificationId": "n-profile",
            "eventType": "net.authorize.customer.created",
            "payload": {"entityName": "customerProfile", "id": "1234"},
        }
    )
    deliver(None, django_capture_on_commit_callbacks, body=raw, signature=sig)
    event = InboundEvent.objects.get(event_id="n-profile")
    assert event.status == "ignored" and "customerProfile" in event.error_message


def test_processor_outage_is_retried_with_backoff_then_processed(
    api_client, sandbox, settings, django_capture_on_commit_callbacks
):
    payment = pay(api_client, card_token="tok_held")
    sandbox.state.review(payment.processor_transaction_id, "approve")
    [note] = notifications(sandbox, "net.authorize.payment.fraud.approved")
    sandbox.configure(fail_mode="http500")

    deliver(note, django_capture_on_commit_callbacks)

    event = InboundEvent.objects.get()
    assert event.status == "pending" and event.retry_count == 1
    assert "processor lookup failed" in event.error_message
    assert event.next_attempt_at > timezone.now()
    assert Payment.objects.get(pk=payment.pk).status == "held"
    assert tasks.inbound_events_retry_due() == 0  # not due yet

    sandbox.configure(fail_mode=None)
    InboundEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.inbound_events_retry_due() == 1
    event.refresh_from_db()
    assert event.status == "processed" and event.retry_count == 1 and event.error_message == ""
    assert Payment.objects.get(pk=payment.pk).status == "captured"


def test_processor_outage_ends_failed_after_the_schedule(
    api_client, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_INBOUND_RETRY_SCHEDULE_SECONDS = [30]
    payment = pay(api_client, card_token="tok_held")
    sandbox.configure(fail_mode="http500")
    raw, sig = forged(
        {
            "notificationId": "n-outage",
            "eventType": "net.authorize.payment.fraud.approved",
            "payload": {"entityName": "transaction", "id": payment.processor_transaction_id},
        }
    )
    deliver(None, django_capture_on_commit_callbacks, body=raw, signature=sig)
    InboundEvent.objects.filter(event_id="n-outage").update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.inbound_events_retry_due()
    event = InboundEvent.objects.get(event_id="n-outage")
    assert event.status == "failed" and event.retry_count == 2
    assert Payment.objects.get(pk=payment.pk).status == "held"


def test_test_endpoint_sends_a_signed_sample_through_the_callback(
    api_client, other_api_client, sandbox, django_capture_on_commit_callbacks
):
    payment = pay(api_client)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/webhooks/authorize-net/test", {"payment_id": str(payment.pk)}, format="json"
        )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["received"] is True
    assert data["notification"]["payload"]["id"] == payment.processor_transaction_id
    event = InboundEvent.objects.get(pk=data["id"])
    assert event.signature_valid and event.status == "processed"
    assert event.metadata["test"] is True and event.merchant_id == payment.merchant_id

    assert (
        other_api_client.post(
            "/api/v1/webhooks/authorize-net/test", {"payment_id": str(payment.pk)}, format="json"
        ).status_code
        == 404
    )
    assert api_client.post("/api/v1/webhooks/authorize-net/test", {"bogus": 1}, format="json").status_code == 400


def test_test_endpoint_needs_webhooks_write_or_staff(make_api_key, merchant, db, django_user_model):
    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["webhooks:read"]).key)
    assert reader.post("/api/v1/webhooks/authorize-net/test", {}, format="json").status_code == 403
    assert reader.get("/api/v1/webhooks/authorize-net/events").status_code == 200

    staff = APIClient()
    staff.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    response = staff.post("/api/v1/webhooks/authorize-net/test", {}, format="json")
    assert response.status_code == 200
    nobody = APIClient()
    nobody.force_login(django_user_model.objects.create_user("joe", password="x"))
    assert nobody.post("/api/v1/webhooks/authorize-net/test", {}, format="json").status_code == 403


def test_supported_event_types(api_client):
    response = api_client.get("/api/v1/webhooks/authorize-net/events")
    assert response.status_code == 200
    types = response.json()["data"]["event_types"]
    assert "net.authorize.payment.authcapture.created" in types
    assert all(t.startswith("net.authorize.") for t in types)


def test_payment_events_reach_the_merchant_endpoint_signed(
    api_client, anet_sandbox, receiver, django_capture_on_commit_callbacks
):
    """The outbound loop with a real payment: POST /payments -> payment.captured at the merchant."""
    created = api_client.post(
        "/api/v1/webhooks", {"url": receiver.url, "events": ["payment.captured"]}, format="json"
    ).json()["data"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/payments", {"amount": "12.50", "currency": "USD", "card_token": "tok_visa"}, format="json"
        )
    assert response.status_code == 201
    payment = response.json()["data"]

    [req] = receiver.requests
    body = req.json()
    assert body["type"] == "payment.captured"
    assert body["id"].startswith("evt_")
    assert body["data"]["id"] == payment["id"] and body["data"]["amount"] == "12.50"
    assert body["data"]["status"] == "captured"
    header = req.headers["EasyPay-Signature"]
    t = header.split(",")[0].removeprefix("t=")
    expected = signing.easypay_signature(created["secret"], int(t), req.body)
    assert header == f"t={t},v1={expected}"
    assert "4111111111111111" not in req.body.decode()
    listed = api_client.get("/api/v1/events?type=payment.captured").json()["data"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert listed[0]["delivery_status"] == "succeeded"
