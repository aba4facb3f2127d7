"""Secrets and card data never leak (OWASP API3 excessive data exposure): API key secrets and hashes,
webhook signing secrets and card numbers appear in no API response after the one that creates them,
in no log record (every logger, DEBUG level), in no stored row, and on no admin page a superuser opens."""

from __future__ import annotations

import logging
import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from accounts.models import APIKey
from payments.models import Payment
from webhooks.models import WebhookEndpoint

from .helpers import PAYMENT, create_endpoint

pytestmark = pytest.mark.django_db

# The cards behind the contract's test tokens: the processor sees them, EasyPay must not keep them.
CARDS = {
    "tok_visa_4242": "4242424242424242",
    "tok_visa": "4111111111111111",
    "tok_mastercard": "5424000000000015",
    "tok_amex": "370000000000002",
    "tok_discover": "6011000000000012",
    "tok_jcb": "3088000000000017",
    "tok_declined": "4111111111111111",
    "tok_held": "4007000000027",
    "tok_processor_error": "4012888818888",
}
PAN_RE = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def _log_text(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


def _stored_text() -> str:
    """Every row of every EasyPay table, as text."""
    chunks = []
    for label in ("accounts", "payments", "webhooks", "subscriptions", "audit"):
        for model in apps.get_app_config(label).get_models():
            if not model._meta.managed or model._meta.proxy:
                continue  # admin-only models without a table
            for obj in model.objects.all():
                chunks.append(repr(model_to_dict(obj)))
    return "\n".join(chunks)


@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser("root-sec", "root@example.com", "pw-Secur3!x")
    client = Client()
    client.force_login(user)
    return client


def test_api_key_secret_is_shown_once_then_never(owner, everything_logged, superuser_client):
    created = owner.post(
        "/api/v1/auth/api-keys", {"name": "shown once", "permissions": ["payments:read"]}, format="json"
    )
    assert created.status_code == 201
    data = created.json()["data"]
    secret, key_id = data["key_secret"], data["key_id"]
    assert data["key"] == f"{key_id}.{secret}"
    stored = APIKey.objects.get(key_id=key_id)
    assert secret not in repr(model_to_dict(stored))  # only its hash is stored
    # The key works, so the audit trail and logs have seen it in a header.
    other = owner.__class__()
    other.credentials(HTTP_X_API_KEY=data["key"])
    assert other.get("/api/v1/payments").status_code == 200

    texts = {
        "retrieve": owner.get(f"/api/v1/auth/api-keys/{stored.pk}").content.decode(),
        "list": owner.get("/api/v1/auth/api-keys").content.decode(),
        "update": owner.patch(f"/api/v1/auth/api-keys/{stored.pk}", {"name": "n"}, format="json").content.decode(),
        "audit-logs": owner.get("/api/v1/audit-logs", {"limit": 100}).content.decode(),
        "logs": _log_text(everything_logged),
        "other tables": _stored_text().replace(stored.key_secret_hash, "<the hash column>"),
        "admin change": superuser_client.get(
            reverse("admin:accounts_apikey_change", args=[stored.pk])
        ).content.decode(),
        "admin list": superuser_client.get(reverse("admin:accounts_apikey_changelist")).content.decode(),
    }
    for where, text in texts.items():
        assert secret not in text, f"the API key secret appears in {where}"
    for where in ("retrieve", "list", "update", "audit-logs", "logs", "admin change", "admin list"):
        assert stored.key_secret_hash not in texts[where], f"the secret's hash appears in {where}"


def test_webhook_secret_is_shown_at_creation_and_rotation_only(
    owner, anet_sandbox, everything_logged, superuser_client
):
    endpoint = create_endpoint(owner)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    rotated = owner.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["data"]["secret"]
    owner.post("/api/v1/payments", PAYMENT, format="json")  # an event and a delivery for the endpoint
    texts = {
        "retrieve": owner.get(f"/api/v1/webhooks/{endpoint['id']}").content.decode(),
        "list": owner.get("/api/v1/webhooks").content.decode(),
        "update": owner.patch(
            f"/api/v1/webhooks/{endpoint['id']}", {"description": "d"}, format="json"
        ).content.decode(),
        "deliveries": owner.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").content.decode(),
        "events": owner.get("/api/v1/events").content.decode(),
        "audit-logs": owner.get("/api/v1/audit-logs", {"limit": 100}).content.decode(),
        "logs": _log_text(everything_logged),
        "admin change": superuser_client.get(
            reverse("admin:webhooks_webhookendpoint_change", args=[endpoint["id"]])
        ).content.decode(),
        "admin list": superuser_client.get(reverse("admin:webhooks_webhookendpoint_changelist")).content.decode(),
    }
    for where, text in texts.items():
        assert secret not in text, f"the old webhook secret appears in {where}"
        assert new_secret not in text, f"the new webhook secret appears in {where}"
        assert "whsec_" not in text, f"a webhook secret appears in {where}"
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).secret == new_secret  # stored for signing


@pytest.mark.parametrize("token", list(CARDS))
def test_card_numbers_never_stored_logged_returned_or_shown(
    owner, anet_sandbox, everything_logged, superuser_client, token
):
    pan = CARDS[token]
    response = owner.post("/api/v1/payments", {**PAYMENT, "card_token": token}, format="json")
    assert response.status_code in (201, 402, 502), response.content
    payment_id = (response.json().get("data") or {})["id"]
    payment = Payment.objects.get(pk=payment_id)
    texts = {
        "create response": response.content.decode(),
        "retrieve": owner.get(f"/api/v1/payments/{payment_id}").content.decode(),
        "list": owner.get("/api/v1/payments").content.decode(),
        "events": owner.get("/api/v1/events").content.decode(),
        "audit-logs": owner.get("/api/v1/audit-logs", {"limit": 100}).content.decode(),
        "stored rows": _stored_text(),
        "logs": _log_text(everything_logged),
        "admin change": superuser_client.get(
            reverse("admin:payments_payment_change", args=[payment.pk])
        ).content.decode(),
        "admin list": superuser_client.get(reverse("admin:payments_payment_changelist")).content.decode(),
    }
    for where, text in texts.items():
        assert pan not in text, f"the card number of {token} appears in {where}"
    assert payment.card_last_four in ("", pan[-4:])


def test_no_pan_like_digit_runs_in_payment_responses(owner, anet_sandbox):
    response = owner.post("/api/v1/payments", PAYMENT, format="json")
    text = response.content.decode()
    for match in PAN_RE.findall(text):
        digits = re.sub(r"\D", "", match)
        assert digits not in CARDS.values(), match


def test_raw_card_number_sent_as_token_is_refused_and_not_kept(owner, anet_sandbox, everything_logged):
    pan = "4242424242424242"
    count = Payment.objects.count()
    response = owner.post("/api/v1/payments", {**PAYMENT, "card_token": pan, "cvv": "123"}, format="json")
    assert response.status_code == 400
    assert Payment.objects.count() == count
    assert pan not in response.content.decode()
    assert pan not in _log_text(everything_logged)
    assert pan not in _stored_text()
