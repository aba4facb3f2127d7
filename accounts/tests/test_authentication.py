"""Every credential failure mode is 401 authentication_failed; scope denial is 403 permission_denied."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt as pyjwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import api_key_revoke

ME = "/api/v1/auth/me"
pytestmark = pytest.mark.django_db


def _assert_401(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"]["code"] == "authentication_failed"
    assert "request_id" in body


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_api_key_authenticates(api_client):
    response = api_client.get(ME)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["merchant_id"] == str(api_client.merchant.pk)
    assert data["credential_type"] == "api_key"
    assert data["key_id"] == api_client.api_key.api_key.key_id


def test_missing_credentials(anon_client):
    _assert_401(anon_client.get(ME))


@pytest.mark.parametrize("header", ["", "garbage", "ek_test_0123456789abcdef", "ek_test_0123456789abcdef.short"])
def test_malformed_api_key(client_for, header):
    client = client_for()
    client.credentials(HTTP_X_API_KEY=header)
    _assert_401(client.get(ME))


def test_unknown_key_id(client_for, api_key):
    client = client_for()
    client.credentials(HTTP_X_API_KEY="ek_test_0000000000000000." + api_key.secret)
    _assert_401(client.get(ME))


def test_wrong_secret(client_for, api_key):
    client = client_for()
    wrong = ("A" if api_key.secret[0] != "A" else "B") + api_key.secret[1:]
    client.credentials(HTTP_X_API_KEY=f"{api_key.api_key.key_id}.{wrong}")
    _assert_401(client.get(ME))


def test_expired_key(make_api_key, merchant, client_for):
    created = make_api_key(merchant=merchant, expires_at=timezone.now() - timedelta(seconds=1))
    _assert_401(client_for(created).get(ME))


def test_revoked_key(api_client):
    assert api_client.get(ME).status_code == 200  # cached snapshot now exists
    api_key_revoke(api_key=api_client.api_key.api_key)
    _assert_401(api_client.get(ME))


def test_suspended_merchant(api_client):
    api_client.merchant.status = "suspended"
    api_client.merchant.save()
    from accounts.services import api_key_cache_invalidate

    api_key_cache_invalidate(api_client.api_key.api_key.key_id)
    _assert_401(api_client.get(ME))


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not-a-jwt", "bearer x.y.z"])
def test_malformed_bearer_header(client_for, header):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=header)
    _assert_401(client.get(ME))


def test_other_authorization_scheme_is_no_credential(client_for):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    _assert_401(client.get(ME))


def test_jwt_from_key_authenticates(api_key, obtain, client_for):
    tokens = obtain(api_key)
    response = client_for(bearer=tokens["access_token"]).get(ME)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["credential_type"] == "jwt"
    assert data["token_subject"] == "api_key"
    assert data["key_id"] == api_key.api_key.key_id


def test_expired_jwt(api_key, obtain, client_for):
    tokens = obtain(api_key)
    payload = AccessToken(tokens["access_token"]).payload
    payload["exp"] = int((timezone.now() - timedelta(seconds=5)).timestamp())
    expired = pyjwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    _assert_401(client_for(bearer=expired).get(ME))


def test_jwt_signed_with_another_key(api_key, obtain, client_for):
    payload = AccessToken(obtain(api_key)["access_token"]).payload
    forged = pyjwt.encode(payload, "not-the-signing-key-" * 3, algorithm="HS256")
    _assert_401(client_for(bearer=forged).get(ME))


def test_alg_none_jwt(api_key, obtain, client_for):
    payload = AccessToken(obtain(api_key)["access_token"]).payload
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
    _assert_401(client_for(bearer=unsigned).get(ME))


def test_refresh_token_is_not_an_access_token(api_key, obtain, client_for):
    _assert_401(client_for(bearer=obtain(api_key)["refresh_token"]).get(ME))


def test_revoked_jwt(api_key, obtain, client_for, anon_client):
    access = obtain(api_key)["access_token"]
    client = client_for(bearer=access)
    assert client.get(ME).status_code == 200
    assert anon_client.post("/api/v1/auth/tokens/revoke", {"token": access}, format="json").status_code == 200
    _assert_401(client.get(ME))


def test_revoking_the_key_kills_its_jwts(api_key, obtain, client_for):
    client = client_for(bearer=obtain(api_key)["access_token"])
    assert client.get(ME).status_code == 200
    api_key_revoke(api_key=api_key.api_key)
    _assert_401(client.get(ME))


def test_scope_denial_is_403(make_api_key, merchant, client_for):
    client = client_for(make_api_key(merchant=merchant, permissions=["payments:read"]))
    for response in (
        client.get("/api/v1/auth/api-keys"),
        client.post("/api/v1/auth/api-keys", {"name": "x", "permissions": ["payments:read"]}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


def test_jwt_permissions_follow_the_key(api_key, obtain, client_for):
    """Narrowing a key narrows the tokens minted from it at once (the intersection is used)."""
    client = client_for(bearer=obtain(api_key)["access_token"])
    assert client.get("/api/v1/auth/api-keys").status_code == 200
    from accounts.services import api_key_update

    api_key_update(api_key=api_key.api_key, permissions=["payments:read"])
    response = client.get("/api/v1/auth/api-keys")
    assert response.status_code == 403
    assert client.get(ME).json()["data"]["permissions"] == ["payments:read"]
