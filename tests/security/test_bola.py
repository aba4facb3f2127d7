"""OWASP API1 (broken object level authorization): merchant B, holding every scope, addresses each of
merchant A's objects on every object endpoint. Each answer is the contract's 404 (the same as for an
id that does not exist, so ids cannot be probed) and A's object is unchanged afterwards. B's lists
and filters never return A's rows."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from accounts.models import APIKey
from audit.models import AuditLog
from payments.models import Payment
from subscriptions.models import Subscription
from webhooks.models import Event, EventDelivery, InboundEvent, WebhookEndpoint

from .helpers import assert_error, create_endpoint, create_payment, create_subscription

pytestmark = pytest.mark.django_db


def snapshot(model, pk) -> dict:
    return model_to_dict(model.objects.get(pk=pk))


@pytest.fixture
def a_objects(owner, anet_sandbox):
    """One of each kind of object merchant A owns, created through the API."""
    endpoint = create_endpoint(owner)
    authorized = create_payment(owner, capture=False)
    captured = create_payment(owner)
    subscription = create_subscription(owner)
    event = Event.objects.filter(merchant=owner.merchant).order_by("-created_at").first()
    delivery = EventDelivery.objects.filter(endpoint_id=endpoint["id"]).first()
    inbound = owner.post("/api/v1/webhooks/authorize-net/test", {"payment_id": captured["id"]}, format="json").json()[
        "data"
    ]
    audit_row = AuditLog.objects.filter(merchant=owner.merchant).order_by("-created_at").first()
    assert event is not None and delivery is not None and audit_row is not None
    return {
        "endpoint": endpoint,
        "authorized": authorized,
        "captured": captured,
        "subscription": subscription,
        "event": event,
        "delivery": delivery,
        "inbound": inbound,
        "audit": audit_row,
        "api_key": owner.api_key.api_key,
    }


PAYMENT_CALLS = [
    ("get", "/api/v1/payments/{id}", None),
    ("put", "/api/v1/payments/{id}", {"description": "pwned", "metadata": {"x": "y"}}),
    ("patch", "/api/v1/payments/{id}", {"customer_email": "attacker@example.com"}),
    ("post", "/api/v1/payments/{id}/capture", {}),
    ("post", "/api/v1/payments/{id}/capture", {"amount": "1.00"}),
    ("post", "/api/v1/payments/{id}/refund", {}),
    ("post", "/api/v1/payments/{id}/refund", {"amount": "1.00", "reason": "pwned"}),
    ("post", "/api/v1/payments/{id}/cancel", {}),
]


@pytest.mark.parametrize("which", ["authorized", "captured"])
@pytest.mark.parametrize(("method", "path", "body"), PAYMENT_CALLS)
def test_payment_of_another_merchant_is_404_and_unchanged(intruder, a_objects, anet_sandbox, which, method, path, body):
    payment_id = a_objects[which]["id"]
    before = snapshot(Payment, payment_id)
    transactions_before = len(anet_sandbox.state.transactions)
    response = getattr(intruder, method)(path.format(id=payment_id), body, format="json")
    assert_error(response, 404, "not_found")
    assert snapshot(Payment, payment_id) == before
    assert len(anet_sandbox.state.transactions) == transactions_before  # the processor was never called


SUBSCRIPTION_CALLS = [
    ("get", "/api/v1/subscriptions/{id}", None),
    ("put", "/api/v1/subscriptions/{id}", {"amount": "0.50"}),
    ("patch", "/api/v1/subscriptions/{id}", {"plan_id": "plan_free", "metadata": {"x": "y"}}),
    ("delete", "/api/v1/subscriptions/{id}", None),
    ("post", "/api/v1/subscriptions/{id}/pause", None),
    ("post", "/api/v1/subscriptions/{id}/resume", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SUBSCRIPTION_CALLS)
def test_subscription_of_another_merchant_is_404_and_unchanged(intruder, a_objects, method, path, body):
    subscription_id = a_objects["subscription"]["id"]
    before = snapshot(Subscription, subscription_id)
    response = getattr(intruder, method)(path.format(id=subscription_id), body, format="json")
    assert_error(response, 404, "not_found")
    assert snapshot(Subscription, subscription_id) == before


def test_paused_subscription_of_another_merchant_cannot_be_resumed(owner, intruder, a_objects):
    subscription_id = a_objects["subscription"]["id"]
    assert owner.post(f"/api/v1/subscriptions/{subscription_id}/pause").status_code == 200
    before = snapshot(Subscription, subscription_id)
    assert_error(intruder.post(f"/api/v1/subscriptions/{subscription_id}/resume"), 404, "not_found")
    assert snapshot(Subscription, subscription_id) == before


ENDPOINT_CALLS = [
    ("get", "/api/v1/webhooks/{id}", None),
    ("put", "/api/v1/webhooks/{id}", {"url": "https://attacker.example/x", "events": ["*"]}),
    ("patch", "/api/v1/webhooks/{id}", {"url": "https://attacker.example/x"}),
    ("delete", "/api/v1/webhooks/{id}", None),
    ("get", "/api/v1/webhooks/{id}/deliveries", None),
    ("post", "/api/v1/webhooks/{id}/rotate-secret", None),
    ("post", "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINT_CALLS)
def test_webhook_endpoint_of_another_merchant_is_404_and_unchanged(intruder, a_objects, method, path, body):
    endpoint_id = a_objects["endpoint"]["id"]
    delivery = a_objects["delivery"]
    before = snapshot(WebhookEndpoint, endpoint_id)
    delivery_before = snapshot(EventDelivery, delivery.pk)
    url = path.format(id=endpoint_id, delivery=delivery.pk)
    response = getattr(intruder, method)(url, body, format="json")
    body_ = assert_error(response, 404, "not_found")
    assert "whsec_" not in str(body_)
    assert snapshot(WebhookEndpoint, endpoint_id) == before
    assert snapshot(EventDelivery, delivery.pk) == delivery_before


def test_redelivering_another_merchants_delivery_through_own_endpoint_is_404(intruder, a_objects):
    own = create_endpoint(intruder, url="https://b.example.com/hook")
    delivery = a_objects["delivery"]
    before = snapshot(EventDelivery, delivery.pk)
    response = intruder.post(f"/api/v1/webhooks/{own['id']}/deliveries/{delivery.pk}/redeliver")
    assert_error(response, 404, "not_found")
    assert snapshot(EventDelivery, delivery.pk) == before


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/api/v1/events/{id}"), ("post", "/api/v1/events/{id}/redeliver")]
)
def test_event_of_another_merchant_is_404(intruder, a_objects, method, path):
    event = a_objects["event"]
    deliveries_before = sorted(map(str, EventDelivery.objects.filter(event=event).values_list("pk", "attempt_count")))
    response = getattr(intruder, method)(path.format(id=event.pk))
    body = assert_error(response, 404, "not_found")
    assert event.pk not in str(body)
    after = sorted(map(str, EventDelivery.objects.filter(event=event).values_list("pk", "attempt_count")))
    assert after == deliveries_before


@pytest.mark.parametrize("lookup", ["id", "key_id"])
@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"name": "pwned", "permissions": ["*"]}),
        ("patch", {"rate_limit_per_minute": 1, "ip_blacklist": ["0.0.0.0/0"]}),
        ("delete", None),
    ],
)
def test_api_key_of_another_merchant_is_404_and_unchanged(owner, intruder, a_objects, lookup, method, body):
    key = a_objects["api_key"]
    before = snapshot(APIKey, key.pk)
    ident = key.pk if lookup == "id" else key.key_id
    response = getattr(intruder, method)(f"/api/v1/auth/api-keys/{ident}", body, format="json")
    assert_error(response, 404, "not_found")
    after = snapshot(APIKey, key.pk)
    for volatile in ("last_used_at", "usage_count"):  # the owner's own requests above update these
        before.pop(volatile)
        after.pop(volatile)
    assert after == before
    assert owner.get("/api/v1/auth/me").status_code == 200  # A's key still works


def test_audit_log_of_another_merchant_is_404(intruder, a_objects):
    row = a_objects["audit"]
    assert_error(intruder.get(f"/api/v1/audit-logs/{row.pk}"), 404, "not_found")


def test_inbound_replay_of_another_merchants_notification_is_404(intruder, a_objects):
    inbound = InboundEvent.objects.get(pk=a_objects["inbound"]["id"])
    assert str(inbound.merchant_id) == str(a_objects["api_key"].merchant_id)
    before = snapshot(InboundEvent, inbound.pk)
    for ident in (inbound.pk, inbound.event_id):
        assert_error(intruder.post(f"/api/v1/webhooks/authorize-net/replay/{ident}"), 404, "not_found")
    assert snapshot(InboundEvent, inbound.pk) == before


def test_inbound_test_notification_with_another_merchants_payment_is_404(intruder, a_objects):
    count = InboundEvent.objects.count()
    response = intruder.post(
        "/api/v1/webhooks/authorize-net/test", {"payment_id": a_objects["captured"]["id"]}, format="json"
    )
    assert_error(response, 404, "not_found")
    assert InboundEvent.objects.count() == count


LISTS = [
    ("/api/v1/payments", lambda a: [a["authorized"]["id"], a["captured"]["id"]]),
    ("/api/v1/subscriptions", lambda a: [a["subscription"]["id"]]),
    ("/api/v1/webhooks", lambda a: [a["endpoint"]["id"]]),
    ("/api/v1/events", lambda a: [a["event"].pk]),
    ("/api/v1/auth/api-keys", lambda a: [str(a["api_key"].pk)]),
    ("/api/v1/audit-logs", lambda a: [str(a["audit"].pk)]),
]


@pytest.mark.parametrize(("path", "ids"), LISTS)
def test_lists_never_show_another_merchants_rows(intruder, a_objects, path, ids):
    response = intruder.get(path, {"limit": 100})
    assert response.status_code == 200, response.content
    text = response.content.decode()
    for ident in ids(a_objects):
        assert str(ident) not in text


@pytest.mark.parametrize(
    "query",
    [
        lambda a: {"subscription_id": a["subscription"]["id"]},
        lambda a: {"customer_id": "cust_sec"},
        lambda a: {"min_amount": "0"},
        lambda a: {"status": "authorized"},
    ],
)
def test_payment_filters_never_reach_another_merchants_rows(intruder, a_objects, query):
    response = intruder.get("/api/v1/payments", query(a_objects))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == []


def test_foreign_id_and_unknown_id_answer_alike(intruder, a_objects):
    """Same status, code and message: B cannot tell A's ids from ids that do not exist."""
    real = intruder.get(f"/api/v1/payments/{a_objects['captured']['id']}").json()["error"]
    fake = intruder.get("/api/v1/payments/00000000-0000-4000-8000-000000000000").json()["error"]
    malformed = intruder.get("/api/v1/payments/not-a-uuid").json()["error"]
    assert real == fake == malformed
