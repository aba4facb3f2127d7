"""OWASP API8 (security misconfiguration): clickjacking and content-security headers on the admin,
the docs and the API; no CORS for unknown origins; production settings refuse DEBUG and development
secrets and harden cookies (checked by importing them in a subprocess with a production environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
STRONG_SECRET = "s" * 20 + "-production-secret-key-for-tests-0123456789"


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/api/docs/"])
def test_pages_cannot_be_framed_and_have_a_csp(path):
    response = Client().get(path)
    assert response.status_code in (200, 302)
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/version", "/api/schema/", "/api/v1/nope", "/health"])
def test_api_answers_carry_a_locked_down_csp_and_are_not_framable(api_client, path):
    response = api_client.get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    if path.startswith("/api/v1/"):
        assert "default-src 'none'" in csp
        assert response["Cache-Control"] == "no-store"


def test_hsts_over_tls(api_client):
    response = api_client.get("/api/v1/payments", secure=True)
    assert "max-age=" in response["Strict-Transport-Security"]


def test_no_cors_grant_for_an_unknown_origin(api_client):
    response = api_client.options(
        "/api/v1/payments", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in response
    response = api_client.get("/api/v1/payments", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


def test_api_errors_never_carry_a_stack_trace(settings, api_client):
    settings.DEBUG = True  # even a misconfigured deployment answers JSON under /api/
    for path in ("/api/v1/nope", "/api/v1/payments/%00", "/api/v1/payments/x/capture"):
        response = api_client.get(path)
        assert response["Content-Type"].startswith("application/json"), path
        assert b"Traceback" not in response.content and b"<html" not in response.content.lower()


def _production(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({k: getattr(settings, k) for k in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SESSION_COOKIE_HTTPONLY', 'X_FRAME_OPTIONS', 'SECURE_CONTENT_TYPE_NOSNIFF', "
        "'WEBHOOK_ALLOW_PRIVATE_URLS')}))"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "DATABASE_URL", "REDIS_URL", "SYSTEMROOT")
    }
    secrets = {"API_KEY_HASH_KEY": "h" * 50, "JWT_SIGNING_KEY": "j" * 50}
    full = {**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **secrets, **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


def test_production_settings_are_hardened_and_debug_off_by_default():
    result = _production({"SECRET_KEY": STRONG_SECRET})
    assert result.returncode == 0, result.stderr[-2000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_HTTPONLY": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "WEBHOOK_ALLOW_PRIVATE_URLS": False,
    }


@pytest.mark.parametrize("debug", ["true", "1", "yes", "on", "True"])
def test_production_refuses_to_start_with_debug_on(debug):
    result = _production({"SECRET_KEY": STRONG_SECRET, "DEBUG": debug})
    assert result.returncode != 0
    assert "DEBUG must be off in production" in result.stderr


@pytest.mark.parametrize("secret", [None, "", "short", "django-insecure-easypay-dev-only-change-me"])
def test_production_refuses_development_or_weak_secret_keys(secret):
    env = {} if secret is None else {"SECRET_KEY": secret}
    result = _production(env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
