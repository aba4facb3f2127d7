"""JWT lifecycle: issue, use, refresh, validate, revoke; user logins; brute-force guard per client IP."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import RevokedToken
from accounts.services import api_key_revoke

from .factories import PASSWORD

TOKENS = "/api/v1/auth/tokens"
ME = "/api/v1/auth/me"
pytestmark = pytest.mark.django_db


def test_lifecycle_issue_use_refresh_validate_revoke(api_key, anon_client, client_for):
    response = anon_client.post(TOKENS, {"key_id": api_key.api_key.key_id, "key_secret": api_key.secret}, format="json")
    assert response.status_code == 200
    pair = response.json()["data"]
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    assert pair["access_token"] and pair["refresh_token"]

    assert client_for(bearer=pair["access_token"]).get(ME).status_code == 200

    validated = anon_client.post(f"{TOKENS}/validate", {"token": pair["access_token"]}, format="json").json()["data"]
    assert validated["valid"] is True
    assert validated["token_type"] == "access"
    assert validated["merchant_id"] == str(api_key.api_key.merchant_id)
    assert validated["key_id"] == api_key.api_key.key_id
    assert validated["expires_at"].endswith("Z") and 0 < validated["expires_in"] <= 900

    refreshed = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
    assert refreshed.status_code == 200
    new = refreshed.json()["data"]
    assert new["access_token"] != pair["access_token"] and new["refresh_token"] != pair["refresh_token"]
    assert client_for(bearer=new["access_token"]).get(ME).status_code == 200
    # The old refresh token is spent.
    again = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
    assert again.status_code == 401
    assert BlacklistedToken.objects.filter(token__jti=OutstandingToken.objects.order_by("id").first().jti).exists()

    revoked = anon_client.post(f"{TOKENS}/revoke", {"token": new["access_token"]}, format="json")
    assert revoked.status_code == 200 and revoked.json()["data"]["revoked"] is True
    assert client_for(bearer=new["access_token"]).get(ME).status_code == 401
    assert RevokedToken.objects.filter(kind="access").count() == 1
    validated = anon_client.post(f"{TOKENS}/validate", {"token": new["access_token"]}, format="json").json()["data"]
    assert validated == {"valid": False, "reason": "revoked", "token_type": "access"}
    # Revoking twice is fine.
    assert anon_client.post(f"{TOKENS}/revoke", {"token": new["access_token"]}, format="json").status_code == 200


def test_a_reused_refresh_token_is_refused_and_logged_with_its_session(
    api_key, obtain, anon_client, client_for, caplog
):
    pair = obtain(api_key)
    new = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json").json()["data"]
    with caplog.at_level("WARNING", logger="easypay.auth"):
        again = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
    assert again.status_code == 401
    [record] = [r for r in caplog.records if r.getMessage() == "refresh token reused"]
    assert record.sid and record.cred == "api_key"
    assert pair["refresh_token"] not in caplog.text
    # The client that rotated first (or retried) keeps working; the operator can end the session.
    assert client_for(bearer=new["access_token"]).get(ME).status_code == 200
    assert anon_client.post(f"{TOKENS}/revoke", {"token": new["refresh_token"]}, format="json").status_code == 200
    assert client_for(bearer=new["access_token"]).get(ME).status_code == 401


def test_revocation_survives_a_cache_flush(api_key, obtain, anon_client, client_for):
    from django.core.cache import cache

    access = obtain(api_key)["access_token"]
    anon_client.post(f"{TOKENS}/revoke", {"token": access}, format="json")
    cache.clear()
    assert client_for(bearer=access).get(ME).status_code == 401


def test_revoking_a_refresh_token_ends_the_session(api_key, obtain, anon_client, client_for):
    pair = obtain(api_key)
    other_session = obtain(api_key)
    assert anon_client.post(f"{TOKENS}/revoke", {"token": pair["refresh_token"]}, format="json").status_code == 200
    assert (
        anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json").status_code
        == 401
    )
    assert client_for(bearer=pair["access_token"]).get(ME).status_code == 401
    assert client_for(bearer=other_session["access_token"]).get(ME).status_code == 200


def test_refresh_fails_once_the_key_is_revoked(api_key, obtain, anon_client):
    pair = obtain(api_key)
    api_key_revoke(api_key=api_key.api_key)
    response = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
    assert response.status_code == 401
    assert not BlacklistedToken.objects.exists()


def test_an_access_token_cannot_refresh(api_key, obtain, anon_client):
    response = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": obtain(api_key)["access_token"]}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_validate_bad_tokens(anon_client, token):
    response = anon_client.post(f"{TOKENS}/validate", {"token": token}, format="json")
    if token == "":
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        assert response.json()["data"] == {"valid": False, "reason": "invalid"}


def test_validate_reports_a_dead_credential(api_key, obtain, anon_client):
    access = obtain(api_key)["access_token"]
    api_key_revoke(api_key=api_key.api_key)
    data = anon_client.post(f"{TOKENS}/validate", {"token": access}, format="json").json()["data"]
    assert data["valid"] is False and data["reason"] == "credential_inactive"


def test_revoke_rejects_foreign_tokens(anon_client):
    response = anon_client.post(f"{TOKENS}/revoke", {"token": "not.a.token"}, format="json")
    assert response.status_code == 401
    assert not RevokedToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"key_id": "ek_test_0123456789abcdef"}, "key_secret"),
        ({"username": "alice"}, "password"),
        ({"key_id": "a", "key_secret": "b", "username": "c", "password": "d"}, "non_field_errors"),
        ({"key_id": "a", "key_secret": "b", "scope": "all"}, "scope"),
    ],
)
def test_token_request_validation(anon_client, body, field):
    response = anon_client.post(TOKENS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_wrong_credentials_are_401(api_key, anon_client, merchant_user):
    for body in (
        {"key_id": api_key.api_key.key_id, "key_secret": "x" * 43},
        {"key_id": "ek_test_0000000000000000", "key_secret": api_key.secret},
        {"key_id": "nonsense", "key_secret": api_key.secret},
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
    ):
        response = anon_client.post(TOKENS, body, format="json")
        assert response.status_code == 401, body
        assert response.json()["error"]["code"] == "authentication_failed"
    assert not OutstandingToken.objects.exists()


def test_revoked_or_expired_key_gets_no_token(api_key, anon_client, make_api_key, merchant):
    from datetime import timedelta

    from django.utils import timezone

    expired = make_api_key(merchant=merchant, expires_at=timezone.now() - timedelta(minutes=1))
    api_key_revoke(api_key=api_key.api_key)
    for created in (api_key, expired):
        body = {"key_id": created.api_key.key_id, "key_secret": created.secret}
        assert anon_client.post(TOKENS, body, format="json").status_code == 401


def test_key_ip_rules_apply_to_token_issue(make_api_key, merchant, anon_client):
    created = make_api_key(merchant=merchant, ip_whitelist=["10.0.0.0/8"])
    response = anon_client.post(TOKENS, {"key_id": created.api_key.key_id, "key_secret": created.secret}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ip_not_allowed"


def test_user_login_tokens(merchant_user, obtain, client_for, anon_client):
    pair = obtain(username="alice", password=PASSWORD)
    client = client_for(bearer=pair["access_token"])
    me = client.get(ME).json()["data"]
    assert me["credential_type"] == "jwt" and me["token_subject"] == "user"
    assert me["username"] == "alice" and me["user_id"] == merchant_user.user_id
    assert me["merchant_id"] == str(merchant_user.merchant_id)
    assert me["permissions"] == ["payments:read", "api_keys:read"]
    assert me["rate_limits"] == {"minute": 100, "hour": 1000, "day": 10000}
    assert client.get("/api/v1/auth/api-keys").status_code == 200
    assert client.post("/api/v1/auth/api-keys", {"name": "x"}, format="json").status_code == 403
    refreshed = anon_client.post(f"{TOKENS}/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
    assert refreshed.status_code == 200
    # Narrowing the user's permissions narrows live tokens; disabling the user kills them.
    merchant_user.permissions = ["payments:read"]
    merchant_user.save()
    assert client.get("/api/v1/auth/api-keys").status_code == 403
    merchant_user.user.is_active = False
    merchant_user.user.save()
    assert client.get(ME).status_code == 401


def test_user_without_merchant_gets_no_token(db, anon_client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("bob", password=PASSWORD)
    response = anon_client.post(TOKENS, {"username": "bob", "password": PASSWORD}, format="json")
    assert response.status_code == 401


@override_settings(ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS={"hour": 5})
def test_secret_brute_force_is_rate_limited_per_ip(api_key, make_api_key, merchant, anon_client, client_for):
    body = {"key_id": api_key.api_key.key_id, "key_secret": "y" * 43}
    for _ in range(5):
        assert anon_client.post(TOKENS, body, format="json").status_code == 401
    blocked = anon_client.post(TOKENS, body, format="json")
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked["Retry-After"]) > 0
    # Even the right secret is refused from that address now (no oracle) ...
    good = {"key_id": api_key.api_key.key_id, "key_secret": api_key.secret}
    assert anon_client.post(TOKENS, good, format="json").status_code == 429
    assert not OutstandingToken.objects.exists()
    # ... while another address, or another key from this address, is unaffected.
    assert client_for(REMOTE_ADDR="198.51.100.7").post(TOKENS, good, format="json").status_code == 200
    other = make_api_key(merchant=merchant)
    body = {"key_id": other.api_key.key_id, "key_secret": other.secret}
    assert anon_client.post(TOKENS, body, format="json").status_code == 200


@override_settings(ACCOUNTS_TOKEN_FAILURE_LIMITS={"minute": 1000, "hour": 4})
def test_failures_across_credentials_are_limited_per_ip(anon_client, merchant_user):
    for n in range(4):
        response = anon_client.post(TOKENS, {"username": f"guess{n}", "password": "x"}, format="json")
        assert response.status_code == 401
    response = anon_client.post(TOKENS, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 429


@override_settings(ACCOUNTS_TOKEN_FAILURE_LIMITS={"hour": 3}, ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS={"hour": 3})
def test_successful_logins_do_not_count_as_failures(api_key, obtain):
    for _ in range(6):
        obtain(api_key)
