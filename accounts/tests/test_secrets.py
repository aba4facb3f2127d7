"""API keys and JWTs have secrets of their own (not SECRET_KEY), each rotated with a window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts import keys
from accounts.models import APIKey

ROOT = Path(__file__).resolve().parents[2]
ME = "/api/v1/auth/me"
OLD_HASH = "old-api-key-hash-key-" + "a" * 20
NEW_HASH = "new-api-key-hash-key-" + "b" * 20
OLD_JWT = "old-jwt-signing-key-" + "c" * 20
NEW_JWT = "new-jwt-signing-key-" + "d" * 20


def test_rotating_secret_key_breaks_no_api_key_and_no_jwt(settings, api_key, obtain, client_for):
    token = obtain(api_key)["access_token"]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "x" * 30
    assert client_for(api_key).get(ME).status_code == 200
    assert client_for(bearer=token).get(ME).status_code == 200


def test_api_key_hash_key_rotation_accepts_the_previous_key_and_rehashes(settings, make_api_key, client_for, merchant):
    settings.API_KEY_HASH_KEY = OLD_HASH
    created = make_api_key(merchant=merchant)
    old_hash = created.api_key.key_secret_hash
    # The rotation window: the new key is current, the old one previous.
    settings.API_KEY_HASH_KEY, settings.API_KEY_HASH_KEY_PREVIOUS = NEW_HASH, OLD_HASH
    assert client_for(created).get(ME).status_code == 200
    stored = APIKey.objects.get(pk=created.api_key.pk).key_secret_hash
    assert stored != old_hash
    assert keys.secret_match(created.secret, stored) == keys.CURRENT
    # The window closes: the re-hashed key keeps working without the previous key.
    settings.API_KEY_HASH_KEY_PREVIOUS = ""
    assert client_for(created).get(ME).status_code == 200


def test_token_obtain_rehashes_a_key_verified_with_the_previous_hash_key(settings, make_api_key, obtain, merchant):
    settings.API_KEY_HASH_KEY = OLD_HASH
    created = make_api_key(merchant=merchant)
    settings.API_KEY_HASH_KEY, settings.API_KEY_HASH_KEY_PREVIOUS = NEW_HASH, OLD_HASH
    obtain(created)
    stored = APIKey.objects.get(pk=created.api_key.pk).key_secret_hash
    assert keys.secret_match(created.secret, stored) == keys.CURRENT


def test_a_key_hashed_under_an_unknown_hash_key_is_refused(settings, make_api_key, client_for, merchant):
    settings.API_KEY_HASH_KEY = OLD_HASH
    created = make_api_key(merchant=merchant)
    settings.API_KEY_HASH_KEY, settings.API_KEY_HASH_KEY_PREVIOUS = NEW_HASH, ""
    response = client_for(created).get(ME)
    assert response.status_code == 401
    assert APIKey.objects.get(pk=created.api_key.pk).key_secret_hash == created.api_key.key_secret_hash


def test_jwt_signing_key_rotation_window(settings, api_key, obtain, client_for):
    settings.JWT_SIGNING_KEY = OLD_JWT
    old_tokens = obtain(api_key)
    settings.JWT_SIGNING_KEY, settings.JWT_SIGNING_KEY_PREVIOUS = NEW_JWT, OLD_JWT
    assert client_for(bearer=old_tokens["access_token"]).get(ME).status_code == 200
    # New tokens (a refresh too) are signed with the new key: they outlive the window.
    refreshed = client_for().post("/api/v1/auth/tokens/refresh", {"refresh_token": old_tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json()
    new_access = refreshed.json()["data"]["access_token"]
    settings.JWT_SIGNING_KEY_PREVIOUS = ""
    assert client_for(bearer=old_tokens["access_token"]).get(ME).status_code == 401
    assert client_for(bearer=new_access).get(ME).status_code == 200


PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'hash': settings.API_KEY_HASH_KEY, 'jwt': settings.SIMPLE_JWT['SIGNING_KEY']}))"
)
STRONG = {
    "SECRET_KEY": "s" * 50,
    "API_KEY_HASH_KEY": "h" * 50,
    "JWT_SIGNING_KEY": "j" * 50,
}


def _production(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    full = {**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def test_production_starts_with_its_own_secrets():
    result = _production(**STRONG)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"hash": "h" * 50, "jwt": "j" * 50}


@pytest.mark.parametrize("name", ["API_KEY_HASH_KEY", "JWT_SIGNING_KEY"])
@pytest.mark.parametrize(
    "value",
    [None, "short", "easypay-dev-only-api-key-hash-key-change-me", "easypay-dev-only-jwt-signing-key-change-me"],
)
def test_production_refuses_missing_or_development_secrets(name, value):
    env = dict(STRONG)
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    result = _production(**env)
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.parametrize("name", ["API_KEY_HASH_KEY", "JWT_SIGNING_KEY"])
def test_production_refuses_a_secret_equal_to_secret_key(name):
    result = _production(**{**STRONG, name: STRONG["SECRET_KEY"]})
    assert result.returncode != 0
    assert f"{name} must differ from SECRET_KEY" in result.stderr
