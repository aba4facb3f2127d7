"""Settings behaviour: defaults without env, backends with env, production refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "anet": settings.AUTHORIZE_NET_ENDPOINT,
    "private": settings.WEBHOOK_ALLOW_PRIVATE_URLS,
}))
"""


def _run(module: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    clean.pop("SECRET_KEY", None)
    clean.pop("DEBUG", None)
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_local_defaults_are_embedded():
    result = _run("config.settings.local")
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["db"].endswith("sqlite3")
    assert probe["cache"].endswith("LocMemCache")
    assert probe["eager"] is True and probe["broker"] == "memory://localhost/"  # in-process: no "No hostname" warnings
    assert probe["debug"] is True
    assert probe["anet"] == "http://127.0.0.1:8999/xml/v1/request.api"


def test_env_selects_postgres_redis_and_a_real_broker():
    result = _run(
        "config.settings.local",
        DATABASE_URL="postgres://u:p@db.example:5432/easypay",
        REDIS_URL="redis://cache.example:6379/0",
        DEBUG="false",
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["db"].endswith("postgresql")
    assert probe["cache"].endswith("RedisCache")
    assert probe["eager"] is False and probe["broker"] == "redis://cache.example:6379/0"
    assert probe["debug"] is False


def test_production_refuses_dev_secret_key():
    result = _run("config.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_debug():
    result = _run("config.settings.production", SECRET_KEY="x" * 50, DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_production_starts_with_real_secrets():
    result = _run("config.settings.production", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is False


def test_bad_boolean_env_is_a_clear_error():
    result = _run("config.settings.local", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_production_refuses_emulator_credentials_against_real_authorize_net():
    result = _run("config.settings.production", SECRET_KEY="k" * 50, AUTHORIZE_NET_ENDPOINT="production")
    assert result.returncode != 0
    assert "AUTHORIZE_NET_API_LOGIN_ID" in result.stderr
    ok = _run(
        "config.settings.production",
        SECRET_KEY="k" * 50,
        AUTHORIZE_NET_ENDPOINT="production",
        AUTHORIZE_NET_API_LOGIN_ID="real-login",
        AUTHORIZE_NET_TRANSACTION_KEY="realkey123456789",
        AUTHORIZE_NET_SIGNATURE_KEY="A" * 128,
    )
    assert ok.returncode == 0, ok.stderr
