"""The /api/v1/webhooks endpoints API, its SSRF guard, and /api/v1/events."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks.models import Event, EventDelivery, WebhookEndpoint

BASE = "/api/v1/webhooks"


def create(client, **body):
    payload = {"url": "https://hooks.example.com/easypay", "events": ["payment.captured"], **body}
    return client.post(BASE, payload, format="json")


def test_create_returns_the_secret_once(api_client):
    response = create(api_client, description="orders", events=["payment.captured", "payment.refunded"])
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["secret"].startswith("whsec_") and len(data["secret"]) > 30
    assert data["url"] == "https://hooks.example.com/easypay"
    assert data["events"] == ["payment.captured", "payment.refunded"]
    assert data["description"] == "orders" and data["is_active"] is True
    endpoint = WebhookEndpoint.objects.get(pk=data["id"])
    assert endpoint.merchant == api_client.merchant and endpoint.secret == data["secret"]

    got = api_client.get(f"{BASE}/{data['id']}").json()["data"]
    assert "secret" not in got and data["secret"] not in str(got)
    listed = api_client.get(BASE).json()
    assert [e["id"] for e in listed["data"]] == [data["id"]]
    assert "secret" not in listed["data"][0] and data["secret"] not in str(listed)
    assert "pagination" in listed


def test_update_and_delete(api_client):
    endpoint_id = create(api_client).json()["data"]["id"]
    response = api_client.patch(f"{BASE}/{endpoint_id}", {"events": ["*"], "is_active": False}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["events"] == ["*"] and response.json()["data"]["is_active"] is False
    assert "secret" not in response.json()["data"]
    put = api_client.put(
        f"{BASE}/{endpoint_id}", {"url": "https://hooks.example.com/v2", "events": ["payment.voided"]}, format="json"
    )
    assert put.status_code == 200 and put.json()["data"]["url"] == "https://hooks.example.com/v2"

    assert api_client.delete(f"{BASE}/{endpoint_id}").status_code == 204
    assert api_client.get(f"{BASE}/{endpoint_id}").status_code == 404
    assert api_client.get(BASE).json()["data"] == []
    assert WebhookEndpoint.objects.get(pk=endpoint_id).is_active is False  # history kept


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://" + "a" * 2050 + ".com/"}, "url"),
        ({"url": "https://user:pass@hooks.example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": ["payment.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "payment.captured"}, "events"),
        ({"secret": "whsec_mine"}, "secret"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_bodies_are_400(api_client, body, field):
    response = create(api_client, **body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["details"]
    assert not WebhookEndpoint.objects.exists()


def test_unknown_field_on_update_is_400(api_client):
    endpoint_id = create(api_client).json()["data"]["id"]
    response = api_client.patch(f"{BASE}/{endpoint_id}", {"secret": "whsec_x"}, format="json")
    assert response.status_code == 400
    assert "secret" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.0.0.5/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/latest",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_private_destinations_are_refused_at_creation(api_client, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = create(api_client, url=url)
    assert response.status_code == 400, url
    assert "url" in response.json()["error"]["details"]
    assert not WebhookEndpoint.objects.exists()


def test_private_destination_refused_on_update_too(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    endpoint_id = create(api_client, url="https://93.184.215.14/hook").json()["data"]["id"]
    response = api_client.patch(f"{BASE}/{endpoint_id}", {"url": "http://127.0.0.1/x"}, format="json")
    assert response.status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == "https://93.184.215.14/hook"


def test_private_urls_allowed_when_the_setting_says_so(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert create(api_client, url="http://127.0.0.1:9/hook").status_code == 201
    assert create(api_client, url="http://localhost:9/hook").status_code == 201


def test_private_destination_refused_again_at_delivery(settings, merchant, receiver, endpoint_for, emit):
    """Saved while allowed (or before DNS changed): the check before sending still refuses it."""
    endpoint_for(merchant, receiver.url)
    endpoint_for(merchant, receiver.url.replace("127.0.0.1", "localhost"))
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    event = emit(merchant)

    assert receiver.requests == []
    deliveries = EventDelivery.objects.filter(event=event)
    assert deliveries.count() == 2
    for delivery in deliveries:
        attempt = delivery.attempts.get()
        assert attempt.status_code is None
        assert attempt.error.startswith("destination refused")
        assert delivery.status == "pending"


def test_dns_rebinding_to_loopback_is_refused_at_delivery(
    settings, monkeypatch, merchant, receiver, endpoint_for, emit
):
    """The name resolved to a public address when saved and to loopback when sending."""
    import socket

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    port = receiver.server.server_address[1]
    answers = {"rebind.example.com": "93.184.215.14"}
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    endpoint_for(merchant, f"http://rebind.example.com:{port}/hook")
    answers["rebind.example.com"] = "127.0.0.1"

    event = emit(merchant)

    assert receiver.requests == []
    attempt = EventDelivery.objects.get(event=event).attempts.get()
    assert "loopback" in attempt.error and "127.0.0.1" in attempt.error


def test_endpoint_count_is_capped(api_client, settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT = 2
    assert create(api_client).status_code == 201
    assert create(api_client).status_code == 201
    assert create(api_client).status_code == 400
    assert WebhookEndpoint.objects.count() == 2


def test_rotate_secret_returns_the_new_secret_and_keeps_the_old_for_the_grace_period(api_client, settings):
    settings.WEBHOOK_SECRET_ROTATION_GRACE_HOURS = 24
    created = create(api_client).json()["data"]
    response = api_client.post(f"{BASE}/{created['id']}/rotate-secret")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["secret"].startswith("whsec_") and data["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.secret == data["secret"] and endpoint.previous_secret == created["secret"]
    left = endpoint.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)
    assert "secret" not in api_client.get(f"{BASE}/{created['id']}").json()["data"]


def test_another_merchants_or_a_malformed_endpoint_id_is_404(api_client, other_api_client):
    foreign = create(other_api_client).json()["data"]["id"]
    for path in (f"{BASE}/{foreign}", f"{BASE}/{uuid.uuid4()}", f"{BASE}/not-a-uuid", f"{BASE}/{foreign}/deliveries"):
        assert api_client.get(path).status_code == 404, path
    assert api_client.patch(f"{BASE}/{foreign}", {"is_active": False}, format="json").status_code == 404
    assert api_client.delete(f"{BASE}/{foreign}").status_code == 404
    assert api_client.post(f"{BASE}/{foreign}/rotate-secret").status_code == 404
    assert api_client.post(f"{BASE}/{foreign}/deliveries/{uuid.uuid4()}/redeliver").status_code == 404
    endpoint = WebhookEndpoint.objects.get(pk=foreign)
    assert endpoint.is_active and not endpoint.previous_secret


def test_scopes(make_api_key, merchant):
    from rest_framework.test import APIClient

    reader = APIClient()
    reader.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["webhooks:read"]).key)
    assert reader.get(BASE).status_code == 200
    assert reader.get("/api/v1/events").status_code == 200
    assert create(reader).status_code == 403
    payments_only = APIClient()
    payments_only.credentials(HTTP_X_API_KEY=make_api_key(merchant=merchant, permissions=["payments:read"]).key)
    assert payments_only.get(BASE).status_code == 403
    assert payments_only.get("/api/v1/events").status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_deliveries_list_and_redeliver(api_client, receiver, emit):
    endpoint_id = create(api_client, url=receiver.url, events=["*"]).json()["data"]["id"]
    receiver.fail_next(1, status=500)
    event = emit(api_client.merchant)

    response = api_client.get(f"{BASE}/{endpoint_id}/deliveries")
    assert response.status_code == 200
    [delivery] = response.json()["data"]
    assert delivery["event_id"] == event.id and delivery["status"] == "pending"
    assert delivery["attempt_count"] == 1 and delivery["last_status_code"] == 500
    assert delivery["attempts"][0]["status_code"] == 500 and delivery["attempts"][0]["attempt_number"] == 1
    assert api_client.get(f"{BASE}/{endpoint_id}/deliveries?status=failed").json()["data"] == []

    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api_client.post(f"{BASE}/{endpoint_id}/deliveries/{delivery['id']}/redeliver")
    assert response.status_code == 200
    assert response.json()["data"]["id"] == delivery["id"]
    # The attempt runs once the redelivery commits.
    data = api_client.get(f"{BASE}/{endpoint_id}/deliveries").json()["data"][0]
    assert data["status"] == "succeeded" and data["attempt_count"] == 2
    assert [a["status_code"] for a in data["attempts"]] == [500, 200]
    assert [r.headers["EasyPay-Event-Id"] for r in receiver.requests] == [event.id, event.id]


def test_events_list_filters_and_detail(api_client, other_api_client, receiver, emit):
    create(api_client, url=receiver.url, events=["payment.captured"])
    receiver.fail_next(1)
    failing = emit(api_client.merchant, "payment.captured", {"id": "pay_a"})
    ok = emit(api_client.merchant, "payment.captured", {"id": "pay_b"})
    unsubscribed = emit(api_client.merchant, "payment.refunded", {"id": "pay_c"})
    EventDelivery.objects.filter(event=failing).update(status="failed")
    foreign = emit(other_api_client.merchant, "payment.captured")

    listed = api_client.get("/api/v1/events").json()
    assert [e["id"] for e in listed["data"]] == [unsubscribed.id, ok.id, failing.id]
    assert listed["data"][1]["delivery_status"] == "succeeded"
    assert listed["data"][0]["delivery_status"] is None
    assert listed["data"][1]["data"] == {"id": "pay_b"}

    def ids(query):
        response = api_client.get("/api/v1/events" + query)
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["data"]]

    assert ids("?type=payment.refunded") == [unsubscribed.id]
    assert ids("?delivery_status=failed") == [failing.id]
    assert ids("?delivery_status=succeeded") == [ok.id]
    assert ids("?delivery_status=pending") == []
    assert ids("?limit=1") == [unsubscribed.id]
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"?created_after={future}") == []
    assert len(ids(f"?created_before={future}")) == 3
    assert api_client.get("/api/v1/events?delivery_status=bogus").status_code == 400

    page = api_client.get("/api/v1/events?limit=2").json()
    assert page["pagination"]["has_more"] is True
    rest = api_client.get(f"/api/v1/events?limit=2&cursor={page['pagination']['next_cursor']}").json()
    assert [e["id"] for e in rest["data"]] == [failing.id]

    detail = api_client.get(f"/api/v1/events/{ok.id}").json()["data"]
    assert detail["id"] == ok.id and detail["type"] == "payment.captured"
    assert detail["created"].endswith("Z")
    assert api_client.get(f"/api/v1/events/{foreign.id}").status_code == 404
    assert api_client.get("/api/v1/events/evt_nope").status_code == 404


def test_event_redeliver_resends_to_subscribed_endpoints(api_client, receiver, emit):
    create(api_client, url=receiver.url, events=["*"])
    event = emit(api_client.merchant)
    assert len(receiver.requests) == 1
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api_client.post(f"/api/v1/events/{event.id}/redeliver")
    assert response.status_code == 200
    assert response.json()["data"]["id"] == event.id
    assert api_client.get(f"/api/v1/events/{event.id}").json()["data"]["delivery_status"] == "succeeded"
    assert [r.json()["id"] for r in receiver.requests] == [event.id, event.id]
    assert EventDelivery.objects.get(event=event).attempt_count == 2


def test_foreign_event_redeliver_is_404(api_client, other_api_client, receiver, emit):
    create(other_api_client, url=receiver.url, events=["*"])
    event = emit(other_api_client.merchant)
    assert api_client.post(f"/api/v1/events/{event.id}/redeliver").status_code == 404
    assert len(receiver.requests) == 1
    assert Event.objects.count() == 1
