"""OWASP API3 (broken object property level authorization, "mass assignment"): fields a merchant may
not set are refused with 400 validation_error naming the field, and nothing of the request is applied
(not even its allowed fields). Also privilege escalation through API-key permissions (API5)."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from accounts.models import APIKey
from payments.models import Payment
from subscriptions.models import Subscription
from webhooks.models import WebhookEndpoint

from .helpers import assert_error, create_endpoint, create_payment, create_subscription, key_client

pytestmark = pytest.mark.django_db


def row(model, pk) -> dict:
    data = model_to_dict(model.objects.get(pk=pk))
    data.pop("last_used_at", None)
    data.pop("usage_count", None)
    return data


PAYMENT_FORBIDDEN = {
    "status": "refunded",
    "amount": "0.01",
    "currency": "JPY",
    "merchant": "00000000-0000-4000-8000-000000000000",
    "merchant_id": "00000000-0000-4000-8000-000000000000",
    "refunded_amount": "0.00",
    "captured_amount": "99999.00",
    "authorized_amount": "99999.00",
    "refund_count": 0,
    "is_test": False,
    "processor_transaction_id": "123456",
    "card_last_four": "0000",
    "subscription_id": "00000000-0000-4000-8000-000000000000",
    "settled_at": "2020-01-01T00:00:00Z",
    "id": "00000000-0000-4000-8000-000000000000",
}


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("field", "value"), list(PAYMENT_FORBIDDEN.items()))
def test_payment_update_refuses_protected_fields(owner, anet_sandbox, method, field, value):
    payment = create_payment(owner)
    before = row(Payment, payment["id"])
    # An allowed field rides along: it must not be applied either.
    response = getattr(owner, method)(
        f"/api/v1/payments/{payment['id']}", {"description": "changed", field: value}, format="json"
    )
    body = assert_error(response, 400, "validation_error")
    assert field in body["error"]["details"], body
    assert row(Payment, payment["id"]) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "captured"),
        ("merchant_id", "00000000-0000-4000-8000-000000000000"),
        ("merchant", "00000000-0000-4000-8000-000000000000"),
        ("captured_amount", "1.00"),
        ("processor_transaction_id", "1"),
        ("is_test", False),  # a test key cannot make a live payment
    ],
)
def test_payment_create_refuses_protected_fields(owner, anet_sandbox, field, value):
    from .helpers import PAYMENT

    count = Payment.objects.count()
    transactions = len(anet_sandbox.state.transactions)
    response = owner.post("/api/v1/payments", {**PAYMENT, field: value}, format="json")
    body = assert_error(response, 400, "validation_error")
    assert field in body["error"]["details"], body
    assert Payment.objects.count() == count
    assert len(anet_sandbox.state.transactions) == transactions


SUBSCRIPTION_FORBIDDEN = {
    "status": "cancelled",
    "is_test": False,
    "merchant": "00000000-0000-4000-8000-000000000000",
    "merchant_id": "00000000-0000-4000-8000-000000000000",
    "next_billing_date": "2000-01-01",
    "failure_count": 0,
    "currency": "JPY",
    "billing_cycle": "daily",
    "payment_method": {"type": "card", "card_last_four": "0000"},
}


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("field", "value"), list(SUBSCRIPTION_FORBIDDEN.items()))
def test_subscription_update_refuses_protected_fields(owner, anet_sandbox, method, field, value):
    subscription = create_subscription(owner)
    before = row(Subscription, subscription["id"])
    response = getattr(owner, method)(
        f"/api/v1/subscriptions/{subscription['id']}", {"plan_id": "plan_other", field: value}, format="json"
    )
    body = assert_error(response, 400, "validation_error")
    assert field in body["error"]["details"], body
    assert row(Subscription, subscription["id"]) == before


API_KEY_FORBIDDEN = {
    "key_secret_hash": "0" * 64,
    "merchant": "00000000-0000-4000-8000-000000000000",
    "merchant_id": "00000000-0000-4000-8000-000000000000",
    "key_id": "ek_test_0000000000000000",
    "status": "active",
    "usage_count": 0,
    "revoked_at": None,
    "mode": "live",
}


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("field", "value"), list(API_KEY_FORBIDDEN.items()))
def test_api_key_update_refuses_protected_fields(owner, make_api_key, method, field, value):
    target = make_api_key(merchant=owner.merchant, name="target").api_key
    before = row(APIKey, target.pk)
    response = getattr(owner, method)(
        f"/api/v1/auth/api-keys/{target.pk}", {"name": "renamed", field: value}, format="json"
    )
    body = assert_error(response, 400, "validation_error")
    assert field in body["error"]["details"], body
    assert row(APIKey, target.pk) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [(k, v) for k, v in API_KEY_FORBIDDEN.items() if k != "mode"],
)
def test_api_key_create_refuses_protected_fields(owner, field, value):
    count = APIKey.objects.count()
    response = owner.post("/api/v1/auth/api-keys", {"name": "new", field: value}, format="json")
    body = assert_error(response, 400, "validation_error")
    assert field in body["error"]["details"], body
    assert APIKey.objects.count() == count


def test_test_mode_key_cannot_create_a_live_key(owner):
    count = APIKey.objects.count()
    response = owner.post("/api/v1/auth/api-keys", {"name": "live", "mode": "live"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert APIKey.objects.count() == count


@pytest.fixture
def key_manager(merchant, make_api_key):
    """A key that may manage keys but holds nothing else."""
    return key_client(make_api_key(merchant=merchant, name="manager", permissions=["api_keys:read", "api_keys:write"]))


def test_key_cannot_mint_a_key_with_more_permissions_than_it_holds(key_manager):
    count = APIKey.objects.count()
    for permissions in (["*"], ["payments:write"], ["api_keys:write", "audit:read"]):
        response = key_manager.post(
            "/api/v1/auth/api-keys", {"name": "escalated", "permissions": permissions}, format="json"
        )
        assert response.status_code in (400, 403), response.content
        assert_error(response, response.status_code)
    assert APIKey.objects.count() == count


def test_key_cannot_widen_its_own_or_a_siblings_permissions(key_manager, make_api_key, merchant):
    sibling = make_api_key(merchant=merchant, name="sibling", permissions=["payments:read"]).api_key
    for target in (key_manager.api_key.api_key, sibling):
        before = row(APIKey, target.pk)
        response = key_manager.patch(f"/api/v1/auth/api-keys/{target.pk}", {"permissions": ["*"]}, format="json")
        assert response.status_code in (400, 403), response.content
        assert row(APIKey, target.pk) == before
    # and the narrow key still cannot reach payments
    assert_error(key_manager.get("/api/v1/payments"), 403, "permission_denied")


WEBHOOK_FORBIDDEN = {
    "secret": "whsec_attacker",
    "merchant": "00000000-0000-4000-8000-000000000000",
    "merchant_id": "00000000-0000-4000-8000-000000000000",
    "previous_secret": "whsec_attacker",
    "deleted_at": None,
}


@pytest.mark.parametrize(("field", "value"), list(WEBHOOK_FORBIDDEN.items()))
def test_webhook_endpoint_refuses_protected_fields(owner, field, value):
    endpoint = create_endpoint(owner)
    before = row(WebhookEndpoint, endpoint["id"])
    response = owner.patch(
        f"/api/v1/webhooks/{endpoint['id']}", {"description": "changed", field: value}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert row(WebhookEndpoint, endpoint["id"]) == before
    count = WebhookEndpoint.objects.count()
    response = owner.post(
        "/api/v1/webhooks", {"url": "https://x.example.com/h", "events": ["*"], field: value}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert WebhookEndpoint.objects.count() == count
