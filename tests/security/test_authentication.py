"""OWASP API2 (broken authentication): forged JWTs (alg=none, foreign secrets, key confusion,
tampered claims, wrong token type) are 401; guessing API secrets on /auth/tokens is rate limited per
client IP with 429 + Retry-After, and then even the right secret gets 429 (no oracle); malformed API
keys are 401 in the contract's envelope."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from .helpers import assert_error

pytestmark = pytest.mark.django_db

PUBLIC_LOOKING_KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
    "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
    "-----END PUBLIC KEY-----\n"
)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


@pytest.fixture
def pair(owner):
    key_id, secret = owner.api_key.key.split(".", 1)
    response = APIClient().post("/api/v1/auth/tokens", {"key_id": key_id, "key_secret": secret}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _claims(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def _bearer(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/payments")


def test_valid_access_token_works(pair):
    assert _bearer(pair["access_token"]).status_code == 200


def test_alg_none_is_401(pair):
    claims = _claims(pair["access_token"])
    for alg in ("none", "None", "NONE", "nOnE"):
        forged = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."
        assert_error(_bearer(forged), 401, "authentication_failed")


def test_token_signed_with_another_secret_is_401(pair):
    claims = _claims(pair["access_token"])
    for secret in ("secret", "", django_settings.SECRET_KEY + "x", "django-insecure-easypay-dev-only-change-me!"):
        forged = pyjwt.encode(claims, secret or "k", algorithm="HS256")
        assert_error(_bearer(forged), 401, "authentication_failed")


def test_key_confusion_hs256_signed_with_a_public_key_is_401(pair):
    claims = _claims(pair["access_token"])
    forged_parts = [_b64({"alg": "HS256", "typ": "JWT"}), _b64(claims)]
    import hashlib
    import hmac

    signing_input = ".".join(forged_parts).encode()
    signature = hmac.new(PUBLIC_LOOKING_KEY.encode(), signing_input, hashlib.sha256).digest()
    forged = ".".join([*forged_parts, base64.urlsafe_b64encode(signature).rstrip(b"=").decode()])
    assert_error(_bearer(forged), 401, "authentication_failed")
    # An RS256/ES256 header is not an algorithm EasyPay accepts at all.
    for alg in ("RS256", "ES256", "HS512"):
        header = _b64({"alg": alg, "typ": "JWT"})
        original_sig = pair["access_token"].rsplit(".", 1)[1]
        assert_error(_bearer(f"{header}.{_b64(claims)}.{original_sig}"), 401, "authentication_failed")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("merchant_id", "00000000-0000-4000-8000-000000000000"),
        ("permissions", ["*", "admin"]),
        ("mode", "live"),
        ("exp", int(time.time()) + 10 * 365 * 86400),
        ("key_id", "ek_test_0000000000000000"),
    ],
)
def test_tampered_payload_with_original_signature_is_401(pair, claim, value):
    header, _payload, signature = pair["access_token"].split(".")
    claims = _claims(pair["access_token"])
    claims[claim] = value
    assert_error(_bearer(f"{header}.{_b64(claims)}.{signature}"), 401, "authentication_failed")


def test_expired_token_is_401(pair):
    claims = _claims(pair["access_token"])
    claims["exp"] = int(time.time()) - 10
    expired = pyjwt.encode(claims, django_settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert_error(_bearer(expired), 401, "authentication_failed")


def test_refresh_token_is_not_an_access_token(pair):
    assert_error(_bearer(pair["refresh_token"]), 401, "authentication_failed")


def test_token_of_a_revoked_key_is_401(owner, pair):
    owner.delete(f"/api/v1/auth/api-keys/{owner.api_key.api_key.pk}")
    assert_error(_bearer(pair["access_token"]), 401, "authentication_failed")


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c", "..", "Bearer x", "e30.e30.", "x" * 5000, "eyJhbGciOiJIUzI1NiJ9.\u00e9.x"]
)
def test_garbage_bearer_tokens_are_401(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/v1/payments")
    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize(
    "key",
    ["", "nodot", ".", "ek_test_x.", ".secret", "ek_test_0000000000000000.wrong", "x" * 10000, "ek_test_\u00e9.s"],
)
def test_malformed_or_wrong_api_keys_are_401(key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert_error(client.get("/api/v1/payments"), 401, "authentication_failed")


def test_unknown_key_id_and_wrong_secret_answer_alike(owner):
    key_id = owner.api_key.key.split(".", 1)[0]
    answers = []
    for candidate in (f"{key_id}.wrong-secret", "ek_test_0123456789abcdef.wrong-secret"):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=candidate)
        answers.append(client.get("/api/v1/payments").json()["error"])
    assert answers[0] == answers[1]


def _token_attempt(key_id: str, secret: str, ip: str):
    return APIClient().post(
        "/api/v1/auth/tokens", {"key_id": key_id, "key_secret": secret}, format="json", REMOTE_ADDR=ip
    )


def test_guessing_one_keys_secret_is_rate_limited_per_ip(owner):
    key_id, secret = owner.api_key.key.split(".", 1)
    limit = django_settings.ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS["minute"]
    for attempt in range(limit):
        assert_error(_token_attempt(key_id, f"guess-{attempt}", "203.0.113.7"), 401, "authentication_failed")
    blocked = _token_attempt(key_id, "guess-more", "203.0.113.7")
    assert_error(blocked, 429, "rate_limited")
    assert int(blocked["Retry-After"]) > 0
    # No oracle: the right secret from that address is refused the same way while blocked.
    assert_error(_token_attempt(key_id, secret, "203.0.113.7"), 429, "rate_limited")
    # Another address is not locked out of the legitimate key.
    assert _token_attempt(key_id, secret, "198.51.100.9").status_code == 200


def test_spraying_many_keys_from_one_ip_is_rate_limited(db):
    limit = django_settings.ACCOUNTS_TOKEN_FAILURE_LIMITS["minute"]
    statuses = [_token_attempt(f"ek_test_{i:016x}", "guess", "203.0.113.99").status_code for i in range(limit + 5)]
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}


def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_budget(owner, settings):
    settings.TRUSTED_PROXIES = []
    key_id = owner.api_key.key.split(".", 1)[0]
    limit = django_settings.ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS["minute"]
    statuses = []
    for attempt in range(limit + 3):
        response = APIClient().post(
            "/api/v1/auth/tokens",
            {"key_id": key_id, "key_secret": f"g{attempt}"},
            format="json",
            REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"10.9.{attempt}.1",
        )
        statuses.append(response.status_code)
    assert statuses[-1] == 429, statuses


def test_user_password_guessing_is_rate_limited_too(db):
    limit = django_settings.ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS["minute"]
    statuses = [
        APIClient()
        .post(
            "/api/v1/auth/tokens", {"username": "admin", "password": f"p{i}"}, format="json", REMOTE_ADDR="203.0.113.8"
        )
        .status_code
        for i in range(limit + 2)
    ]
    assert statuses[:limit] == [401] * limit
    assert statuses[-1] == 429
