"""The hostile-input layer over the whole API: every operation of the OpenAPI schema, every path
parameter, query parameter, header and writable body field (and the body as a whole), fed hostile
strings and JSON (``strategies.py``) by Hypothesis, against real objects of the merchant.

For every request: never a 5xx; exactly one audit row (every ``/api/v1/`` request, whatever its
bytes); and on a 4xx nothing stored or changed (except what the contract stores on purpose: a
declined payment on 402, the forensic row of a refused Authorize.Net callback).

Bounded for CI: ``HOSTILE_MAX_EXAMPLES`` requests per operation (default 8, derandomized so CI
is repeatable; ``HOSTILE_RANDOM=1`` explores new examples). The totals are printed at the end of
the run (``conftest.pytest_terminal_summary``)."""

from __future__ import annotations

import json
import os
from collections import Counter
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Max
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import APIKey, RevokedToken
from audit.models import AuditLog
from core.models import IdempotencyRecord
from payments.inbound import services as inbound_services
from payments.models import Payment, PaymentEvent, Refund
from subscriptions.models import Subscription
from tests.security.helpers import PAYMENT, SUBSCRIPTION, create_endpoint, create_payment, create_subscription
from webhooks import signing
from webhooks.models import DeliveryAttempt, Event, EventDelivery, InboundEvent, WebhookEndpoint

from .schema_ops import Operation, baseline_body, operations
from .strategies import Deep, hostile_json, hostile_text

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("HOSTILE_MAX_EXAMPLES", "8"))
RANDOM = os.environ.get("HOSTILE_RANDOM", "") == "1"
STATS: dict = {"requests": 0, "operations": set(), "statuses": Counter(), "targets": Counter()}

INBOUND = "/api/v1/webhooks/authorize-net"
TRACKED = (
    Payment,
    Refund,
    PaymentEvent,
    IdempotencyRecord,
    Subscription,
    WebhookEndpoint,
    Event,
    EventDelivery,
    DeliveryAttempt,
    APIKey,
    RevokedToken,
    InboundEvent,
)
WITH_UPDATED_AT = (Payment, Refund, Subscription, WebhookEndpoint, EventDelivery, InboundEvent)
RAW_BODIES = [b"\xff\xfe\x00", b'{"a": "\xed\xa0\x80"}', b"\x00", b'{"a": 1}\x00', b"[" * 5000]


class World:
    """Real objects of the merchant, for path parameters and valid baseline bodies."""

    def __init__(self, owner, make_api_key):
        self.endpoint = create_endpoint(owner)["id"]
        self.captured = create_payment(owner)["id"]
        self.authorized = create_payment(owner, capture=False)["id"]
        self.subscription = create_subscription(owner)["id"]
        self.victim = make_api_key(merchant=owner.merchant, name="victim")
        self.event = Event.objects.filter(merchant=owner.merchant).order_by("created_at").first().pk
        self.delivery = EventDelivery.objects.filter(endpoint_id=self.endpoint).first().pk
        raw, headers = inbound_services.inbound_sample_build()
        self.inbound = inbound_services.inbound_receive(raw_body=raw, headers=headers, source_ip=None).event.pk
        self.audit = AuditLog.objects.filter(merchant=owner.merchant).first().pk

    def path_value(self, op: Operation, name: str) -> str:
        if name == "delivery_id":
            return str(self.delivery)
        if name == "webhook_id":
            return str(self.inbound)
        parts = op.path.split("/")
        at = parts.index("{" + name + "}")
        resource, action = parts[at - 1], (parts[at + 1] if at + 1 < len(parts) else "")
        if resource == "payments":
            return str(self.authorized if action in ("capture", "cancel") else self.captured)
        ids = {
            "subscriptions": self.subscription,
            "webhooks": self.endpoint,
            "api-keys": self.victim.api_key.pk,
            "events": self.event,
            "audit-logs": self.audit,
        }
        return str(ids.get(resource, "00000000-0000-4000-8000-000000000000"))

    def baseline(self, op: Operation) -> dict | None:
        known = {
            "POST /api/v1/payments": PAYMENT,
            "POST /api/v1/subscriptions": SUBSCRIPTION,
            "POST /api/v1/webhooks": {"url": "https://hooks.example.com/x", "events": ["*"]},
            "PUT /api/v1/webhooks/{id}": {"url": "https://hooks.example.com/y", "events": ["*"]},
            "POST /api/v1/auth/api-keys": {"name": "new key", "permissions": ["payments:read"]},
            "POST /api/v1/auth/tokens": {"key_id": self.victim.api_key.key_id, "key_secret": self.victim.secret},
            "POST /api/v1/payments/{id}/refund": {"amount": "1.00"},
            "POST /api/v1/payments/{id}/capture": {"amount": "1.00"},
            "PATCH /api/v1/payments/{id}": {"description": "changed"},
            "PATCH /api/v1/subscriptions/{id}": {"plan_id": "plan_silver"},
            "POST /api/v1/webhooks/authorize-net/test": {"event_type": "net.authorize.payment.authcapture.created"},
        }
        if op.id in known:
            return dict(known[op.id])
        if op.id == f"POST {INBOUND}":
            return json.loads(inbound_services.inbound_sample_build()[0])
        return baseline_body(op) if op.body_schema else None


@pytest.fixture
def world(owner, make_api_key, anet_sandbox):
    return World(owner, make_api_key)


def targets(op: Operation) -> list[tuple[str, str | None]]:
    found = [("path", p) for p in op.path_params] + [("query", q) for q in op.query_params]
    found += [("header", h) for h in op.headers] + [("field", f) for f in op.body_fields]
    if op.takes_body:
        found.append(("body", None))
    return found or [("query", "unexpected")]


def _dump(value) -> str:
    """JSON text of ``value`` (surrogates travel as their \\u escapes), ``Deep`` written as text."""
    deep: list[Deep] = []

    def default(obj):
        if isinstance(obj, Deep):
            deep.append(obj)
            return f"__deep_{len(deep) - 1}__"
        raise TypeError(type(obj))

    text = json.dumps(value, default=default)
    for index, item in enumerate(deep):
        text = text.replace(f'"__deep_{index}__"', item.json())
    return text


def _url_text(value) -> str:
    text = value if isinstance(value, str) else _dump(value)
    return quote(text, safe="", errors="surrogatepass")


def _header_text(value) -> str:
    # What a WSGI server hands over: the header's bytes read as latin-1.
    text = value if isinstance(value, str) else _dump(value)
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def build(op: Operation, world: World, target: tuple, value, raw_choice: bytes | None):
    kind, name = target
    path = op.path
    for param in op.path_params:
        given_value = _url_text(value) if target == ("path", param) else world.path_value(op, param)
        path = path.replace("{" + param + "}", given_value)
    if kind == "query":
        path += f"?{quote(name)}={_url_text(value)}"
    extra = {}
    if kind == "header":
        extra["HTTP_" + name.upper().replace("-", "_")] = _header_text(value)
    body: bytes | None = None
    if op.takes_body:
        base = world.baseline(op)
        if kind == "body":
            body = raw_choice if raw_choice is not None else _dump(value).encode("utf-8", "surrogatepass")
        elif kind == "field":
            body = _dump({**(base or {}), name: value}).encode()
        elif base is not None:
            body = _dump(base).encode()
    if op.path == INBOUND and kind != "header" and body is not None:
        extra["HTTP_X_ANET_SIGNATURE"] = signing.anet_signature_header(
            body, django_settings.AUTHORIZE_NET_SIGNATURE_KEY
        )
    return path, body, extra


def snapshot(op: Operation) -> dict:
    state = {}
    for model in TRACKED:
        if model is InboundEvent and op.path == INBOUND:
            continue  # a refused callback leaves its forensic row, on purpose
        state[model.__name__] = model.objects.count()
    for model in WITH_UPDATED_AT:
        if model is InboundEvent and op.path == INBOUND:
            continue
        state[model.__name__ + ".updated"] = model.objects.aggregate(m=Max("updated_at"))["m"]
    return state


@pytest.mark.parametrize("op", operations(), ids=lambda op: op.id)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_operation_answers_hostile_input_with_a_5xx_or_loses_its_audit_row(owner, world, op, data):
    target = data.draw(st.sampled_from(targets(op)), label="target")
    string_only = target[0] in ("path", "query", "header")
    value = data.draw(hostile_text if string_only else hostile_json, label="value")
    raw_choice = (
        data.draw(st.sampled_from([None, None, None, *RAW_BODIES]), label="raw") if target[0] == "body" else None
    )
    path, body, extra = build(op, world, target, value, raw_choice)
    before, audited = snapshot(op), AuditLog.objects.count()

    with transaction.atomic():
        if body is None:
            response = owner.generic(op.method.upper(), path, **extra)
        else:
            response = owner.generic(op.method.upper(), path, body, content_type="application/json", **extra)

    STATS["requests"] += 1
    STATS["operations"].add(op.id)
    STATS["statuses"][response.status_code] += 1
    STATS["targets"][target[0]] += 1
    assert response.status_code < 500, (target, repr(value)[:200], response.status_code, response.content[:400])
    if path.startswith("/api/v1/"):
        assert AuditLog.objects.count() == audited + 1, (target, repr(value)[:200], response.status_code)
        if response.status_code != 204:
            assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    if 400 <= response.status_code < 500 and response.status_code != 402:
        assert snapshot(op) == before, (target, repr(value)[:200], response.status_code, response.content[:300])


def test_the_layer_covers_every_operation_of_the_schema():
    """The operation list is the schema's: at least the API's 52 operations, each with something to fuzz."""
    ops = operations()
    assert len(ops) >= 52
    assert all(targets(op) for op in ops)
    assert {"POST /api/v1/payments", "POST /api/v1/webhooks/authorize-net", "DELETE /api/v1/auth/api-keys/{id}"} <= {
        op.id for op in ops
    }
