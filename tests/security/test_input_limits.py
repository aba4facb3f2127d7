"""Hostile input (OWASP API4 resource consumption, API8 misconfiguration, injection): list parameters
that try SQL or filter injection, malformed paging, oversized and deeply nested bodies, NUL
characters, metadata limits, and header injection through X-Request-ID. The answer is a 4xx in the
contract's envelope or an empty result: never a 500, never another merchant's rows, never a charge.

Each request runs in its own savepoint: in production every request has its own transaction, so one
that breaks its statement must not poison the next request of the same test."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from audit.models import AuditLog
from payments.models import Payment
from subscriptions.models import Subscription

from .helpers import PAYMENT, SUBSCRIPTION, assert_error, create_payment, create_subscription

pytestmark = pytest.mark.django_db


def call(client, method, path, data=None, **extra):
    with transaction.atomic():
        if isinstance(data, str | bytes):
            return client.generic(method.upper(), path, data, content_type="application/json", **extra)
        return getattr(client, method)(path, data, format="json", **extra)


@pytest.fixture
def two_merchants_data(owner, intruder, anet_sandbox):
    create_payment(owner)
    create_payment(owner, capture=False)
    create_subscription(owner)
    return {"foreign_payments": {str(p.pk) for p in Payment.objects.filter(merchant=owner.merchant)}}


LIST_PATHS = [
    "/api/v1/payments",
    "/api/v1/subscriptions",
    "/api/v1/events",
    "/api/v1/audit-logs",
    "/api/v1/webhooks",
    "/api/v1/auth/api-keys",
]
HOSTILE_QUERIES = [
    {"status": "' OR 1=1--"},
    {"status": "captured' OR '1'='1"},
    {"customer_id": "' OR '1'='1"},
    {"customer_id": "x'; DROP TABLE payments_payment;--"},
    {"min_amount": "1;DROP TABLE payments_payment"},
    {"max_amount": "1e309"},
    {"min_amount": "NaN"},
    {"created_after": "notadate"},
    {"created_before": "2024-13-45T99:99:99Z"},
    {"subscription_id": "' OR 1=1--"},
    {"is_test": "maybe"},
    {"currency": "USD' OR '1'='1"},
    {"limit": "0"},
    {"limit": "101"},
    {"limit": "-1"},
    {"limit": "1e2"},
    {"limit": "99999999999999999999999"},
    {"cursor": "garbage"},
    {"cursor": "cD0yMDI0LTAxLTAx"},  # base64 of "p=2024-01-01": a forged position
    {"cursor": "' OR 1=1--"},
    {"customer_id[$ne]": "x"},
    {"ordering": "merchant_id"},
    {"merchant_id": "00000000-0000-4000-8000-000000000000"},
    {"type": "payment.captured' OR 1=1--"},
    {"resource_id": "' OR 1=1--"},
]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: json.dumps(q)[:40])
def test_hostile_list_parameters_are_400_or_empty_never_500_never_foreign(intruder, two_merchants_data, path, query):
    response = call(intruder, "get", path + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        assert_error(response, 400, "validation_error")
        return
    text = response.content.decode()
    for foreign in two_merchants_data["foreign_payments"]:
        assert foreign not in text
    data = response.json()["data"]
    assert isinstance(data, list)


@pytest.mark.parametrize(
    "query",
    [
        "status=' OR 1=1--",
        "min_amount=1;DROP",
        "created_after=notadate",
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "is_test=maybe",
        "subscription_id=nope",
    ],
)
def test_payment_list_rejects_invalid_filters_with_400(owner, query):
    body = assert_error(call(owner, "get", f"/api/v1/payments?{query}"), 400, "validation_error")
    assert query.split("=")[0] in body["error"]["details"], body


def test_sql_in_filters_changes_nothing(owner, two_merchants_data):
    count = Payment.objects.count()
    call(owner, "get", "/api/v1/payments?customer_id=x'; DELETE FROM payments_payment;--")
    call(owner, "get", "/api/v1/payments?min_amount=1;DELETE FROM payments_payment")
    assert Payment.objects.count() == count


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/payments", "created_after"),
        ("/api/v1/payments", "created_before"),
        ("/api/v1/subscriptions", "created_after"),
        ("/api/v1/audit-logs", "created_before"),
    ],
)
def test_datetime_filter_with_out_of_range_utc_offset_is_400(owner, path, param):
    response = call(owner, "get", f"{path}?{param}=2024-01-01T00:00:00-23:00")
    assert_error(response, 400, "validation_error")


# --- bodies ---------------------------------------------------------------------------------------


def test_body_over_one_megabyte_is_413(owner, anet_sandbox):
    count = Payment.objects.count()
    big = json.dumps({**PAYMENT, "description": "x" * (1024 * 1024 + 10)})
    response = call(owner, "post", "/api/v1/payments", big)
    assert_error(response, 413, "payload_too_large")
    assert Payment.objects.count() == count


def test_body_over_one_megabyte_is_413_on_the_unauthenticated_callback(anon_client):
    response = call(anon_client, "post", "/api/v1/webhooks/authorize-net", "x" * (1024 * 1024 + 1))
    assert_error(response, 413, "payload_too_large")


def test_lying_content_length_is_refused(owner):
    response = owner.generic("POST", "/api/v1/payments", b"{}", content_type="application/json", CONTENT_LENGTH="abc")
    assert_error(response, 400, "validation_error")


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [10_000, 2_000, 900])
def test_deeply_nested_metadata_is_400_not_500(owner, anet_sandbox, depth):
    owner.raise_request_exception = False  # as in production: an exception becomes the 500 handler's answer
    count = Payment.objects.count()
    body = json.dumps({**PAYMENT, "metadata": {}})[:-1].replace('"metadata": {}', '"metadata": ' + _nested(depth))
    response = call(owner, "post", "/api/v1/payments", body + "}")
    assert_error(response, 400, "validation_error")
    assert Payment.objects.count() == count


@pytest.mark.parametrize("depth", [2, 3, 30])
def test_nested_metadata_is_refused_before_anything_is_charged(owner, anet_sandbox, depth):
    """Metadata is flat (string keys to strings, numbers, booleans or null): an object or list as a value
    is 400 naming the field, however shallow, and nothing reaches the processor or the database."""
    count, charges = Payment.objects.count(), len(anet_sandbox.state.transactions)
    body = json.dumps({**PAYMENT, "metadata": json.loads(_nested(depth))})
    response = call(owner, "post", "/api/v1/payments", body)
    assert_error(response, 400, "validation_error")
    assert "metadata" in response.json()["error"]["details"]
    assert (Payment.objects.count(), len(anet_sandbox.state.transactions)) == (count, charges)


@pytest.mark.parametrize(
    ("path", "make_body"),
    [
        ("/api/v1/payments", lambda nul: {**PAYMENT, "metadata": {"note": f"a{nul}b"}}),
        ("/api/v1/payments", lambda nul: {**PAYMENT, "metadata": {f"k{nul}": "v"}}),
        ("/api/v1/subscriptions", lambda nul: {**SUBSCRIPTION, "metadata": {"note": f"a{nul}b"}}),
    ],
)
def test_nul_character_in_metadata_is_400(owner, anet_sandbox, path, make_body):
    owner.raise_request_exception = False
    transactions = len(anet_sandbox.state.transactions)
    response = call(owner, "post", path, make_body("\u0000"))
    assert_error(response, 400, "validation_error")
    assert len(anet_sandbox.state.transactions) == transactions


@pytest.mark.parametrize("field", ["description", "customer_name", "customer_id"])
def test_nul_character_in_text_fields_is_400(owner, anet_sandbox, field):
    transactions = len(anet_sandbox.state.transactions)
    response = call(owner, "post", "/api/v1/payments", {**PAYMENT, field: "a\u0000b"})
    assert_error(response, 400, "validation_error")
    assert len(anet_sandbox.state.transactions) == transactions


def test_nul_character_in_a_query_still_leaves_an_audit_row(owner):
    before = AuditLog.objects.filter(merchant=owner.merchant).count()
    response = call(owner, "get", "/api/v1/payments?note=%00")
    assert response.status_code == 200
    assert AuditLog.objects.filter(merchant=owner.merchant).count() == before + 1


def test_nul_free_request_leaves_an_audit_row(owner):
    """The control for the test above: an ordinary request is audited."""
    before = AuditLog.objects.filter(merchant=owner.merchant).count()
    assert call(owner, "get", "/api/v1/payments?note=x").status_code == 200
    assert AuditLog.objects.filter(merchant=owner.merchant).count() == before + 1


# --- metadata limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},  # too many keys
        {"k" * 41: "v"},  # key too long
        {"note": "x" * 501},  # value too long
        {"nested": {"a": 1}},  # not flat
        {"note": "x" * 20000},  # huge value
    ],
    ids=["51-keys", "41-char-key", "501-char-value", "nested", "20k-value"],
)
def test_subscription_metadata_limits_are_enforced(owner, anet_sandbox, metadata):
    count = Subscription.objects.count()
    response = call(owner, "post", "/api/v1/subscriptions", {**SUBSCRIPTION, "metadata": metadata})
    body = assert_error(response, 400, "validation_error")
    assert "metadata" in body["error"]["details"]
    assert Subscription.objects.count() == count


def test_payment_metadata_over_16_kb_is_400(owner, anet_sandbox):
    transactions = len(anet_sandbox.state.transactions)
    response = call(owner, "post", "/api/v1/payments", {**PAYMENT, "metadata": {"note": "x" * 20000}})
    body = assert_error(response, 400, "validation_error")
    assert "metadata" in body["error"]["details"]
    assert len(anet_sandbox.state.transactions) == transactions


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"note": "x" * 501},
        {"nested": {"a": 1}},
    ],
    ids=["51-keys", "41-char-key", "501-char-value", "nested"],
)
def test_payment_metadata_limits_match_subscriptions(owner, anet_sandbox, metadata):
    response = call(owner, "post", "/api/v1/payments", {**PAYMENT, "metadata": metadata})
    assert_error(response, 400, "validation_error")


# --- X-Request-ID ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "abc\r\nSet-Cookie: session=attacker",
        "abc\nX-Injected: 1",
        "abc\rX-Injected: 1",
        "x" * 10_000,
        "<script>alert(1)</script>",
        "../../etc/passwd",
        " leading-space",
        "req_\u00e9\u00e8",
        "",
    ],
    ids=["crlf", "lf", "cr", "10k", "html", "path", "space", "unicode", "empty"],
)
def test_unsafe_request_id_is_replaced_by_a_generated_one(owner, value):
    response = owner.get("/api/v1/payments", HTTP_X_REQUEST_ID=value)
    assert response.status_code == 200
    rid = response["X-Request-ID"]
    assert rid.startswith("req_") and rid != value
    assert response.json()["request_id"] == rid
    assert "\r" not in rid and "\n" not in rid and len(rid) <= 128
    assert "Set-Cookie" not in response and "X-Injected" not in response


def test_unsafe_request_id_is_replaced_on_errors_and_unauthenticated_calls(anon_client):
    response = anon_client.get("/api/v1/payments", HTTP_X_REQUEST_ID="a\r\nb")
    body = assert_error(response, 401, "authentication_failed")
    assert body["request_id"] == response["X-Request-ID"] and body["request_id"].startswith("req_")


def test_sane_request_id_is_kept(owner):
    response = owner.get("/api/v1/payments", HTTP_X_REQUEST_ID="corr-123.abc:9")
    assert response["X-Request-ID"] == "corr-123.abc:9" == response.json()["request_id"]


# --- unrouted paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/webhooks/not-a-uuid", "/api/v1/events/%F0%9F%92%A5/redeliver"]
)
def test_unsafe_method_on_unrouted_api_path_is_json_404(owner, method, path):
    client = APIClient(enforce_csrf_checks=True)  # as a real client: Django's test client skips CSRF
    client.credentials(HTTP_X_API_KEY=owner.api_key.key)
    response = getattr(client, method)(path, {}, format="json")
    assert_error(response, 404, "not_found")
