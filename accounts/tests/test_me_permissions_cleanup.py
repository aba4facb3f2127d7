"""me, permissions/check, cleanup (endpoint and Celery task) and the create_api_key command."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import APIKey, Merchant, RevokedToken
from accounts.tasks import auth_cleanup

pytestmark = pytest.mark.django_db
CHECK = "/api/v1/auth/permissions/check"


def test_me_reports_the_credential(make_api_key, merchant, client_for):
    created = make_api_key(merchant=merchant, permissions=["payments:read"], rate_limit_per_minute=7)
    data = client_for(created).get("/api/v1/auth/me").json()["data"]
    assert data["merchant_id"] == str(merchant.pk) and data["merchant_name"] == merchant.name
    assert data["credential_type"] == "api_key" and data["key_id"] == created.api_key.key_id
    assert data["permissions"] == ["payments:read"] and data["effective_permissions"] == ["payments:read"]
    assert data["mode"] == "test" and data["is_test"] is True
    assert data["rate_limits"] == {"minute": 7, "hour": 1000, "day": 10000}


def test_permissions_check(make_api_key, merchant, client_for):
    client = client_for(make_api_key(merchant=merchant, permissions=["payments:read", "webhooks:write"]))
    response = client.post(CHECK, {"permissions": ["payments:read", "payments:write", "*"]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == {
        "granted": ["payments:read"],
        "denied": ["payments:write", "*"],
        "results": {"payments:read": True, "payments:write": False, "*": False},
        "all_granted": False,
    }


def test_permissions_check_with_star(api_client):
    data = api_client.post(CHECK, {"permissions": ["audit:read", "*"]}, format="json").json()["data"]
    assert data["denied"] == [] and data["all_granted"] is True


@pytest.mark.parametrize("body", [{"permissions": ["payments:read", "payments:fly"]}, {"permissions": []}, {}])
def test_permissions_check_validation(api_client, body):
    response = api_client.post(CHECK, body, format="json")
    assert response.status_code == 400
    assert "permissions" in response.json()["error"]["details"]


def test_permissions_check_needs_credentials(anon_client):
    assert anon_client.post(CHECK, {"permissions": ["payments:read"]}, format="json").status_code == 401


def _expired_rows(merchant):
    past = timezone.now() - timedelta(days=1)
    future = timezone.now() + timedelta(days=1)
    old = OutstandingToken.objects.create(jti="old", token="t", expires_at=past)
    BlacklistedToken.objects.create(token=old)
    OutstandingToken.objects.create(jti="old2", token="t", expires_at=past)
    OutstandingToken.objects.create(jti="live", token="t", expires_at=future)
    RevokedToken.objects.create(jti="gone", expires_at=past)
    RevokedToken.objects.create(jti="keep", expires_at=future)


def test_cleanup_endpoint(api_client, make_api_key):
    _expired_rows(api_client.merchant)
    expired = make_api_key(merchant=api_client.merchant, expires_at=timezone.now() - timedelta(minutes=1))
    response = api_client.post("/api/v1/auth/cleanup")
    assert response.status_code == 200
    assert response.json()["data"] == {
        "outstanding_tokens_deleted": 2,
        "blacklisted_tokens_deleted": 1,
        "revoked_tokens_deleted": 1,
        "api_keys_expired": 1,
    }
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == ["live"]
    assert list(RevokedToken.objects.values_list("jti", flat=True)) == ["keep"]
    assert APIKey.objects.get(pk=expired.api_key.pk).status == "revoked"
    assert APIKey.objects.get(pk=api_client.api_key.api_key.pk).status == "active"
    # Run again: nothing left to do.
    assert set(api_client.post("/api/v1/auth/cleanup").json()["data"].values()) == {0}


def test_cleanup_needs_api_keys_write(make_api_key, merchant, client_for):
    _expired_rows(merchant)
    response = client_for(make_api_key(merchant=merchant, permissions=["api_keys:read"])).post("/api/v1/auth/cleanup")
    assert response.status_code == 403
    assert OutstandingToken.objects.count() == 3


def test_cleanup_task(merchant):
    _expired_rows(merchant)
    result = auth_cleanup.delay().get()
    assert result["outstanding_tokens_deleted"] == 2
    assert RevokedToken.objects.count() == 1


def test_create_api_key_command_json_and_key_works():
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--merchant",
        "Acme Widgets",
        "--permissions",
        "payments:read,api_keys:read",
        "--rate-limit-per-minute",
        "42",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert {"key_id", "key_secret", "key", "merchant_id", "permissions"} <= set(data)
    assert data["key"] == f"{data['key_id']}.{data['key_secret']}"
    assert data["merchant_id"] == str(Merchant.objects.get(name="Acme Widgets").pk)
    assert data["permissions"] == ["payments:read", "api_keys:read"]
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=data["key"])
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["data"]["merchant_id"] == data["merchant_id"]
    assert me.json()["data"]["rate_limits"]["minute"] == 42
    # The same merchant again: a second key, no second merchant.
    out2 = io.StringIO()
    call_command("create_api_key", "--merchant", "Acme Widgets", "--json", stdout=out2)
    assert json.loads(out2.getvalue())["merchant_id"] == data["merchant_id"]
    assert json.loads(out2.getvalue())["permissions"] == ["*"]


@pytest.mark.parametrize(
    "args",
    [
        ["--permissions", "payments:fly"],
        ["--rate-limit-per-hour", "0"],
        ["--ip-whitelist", "10.0.0.0/99"],
    ],
)
def test_create_api_key_command_rejects_bad_input(args):
    with pytest.raises(CommandError):
        call_command("create_api_key", "--merchant", "Bad Inputs", *args, "--json", stdout=io.StringIO())
    assert not APIKey.objects.exists()
