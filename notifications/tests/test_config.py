"""EMAIL_URL is parsed with django-environ into Django's EMAIL_* settings, in every settings module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k, None) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', "
    "'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', 'EMAIL_FILE_PATH', "
    "'DEFAULT_FROM_EMAIL')}))"
)
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def _settings(module: str, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    environ.update({"DJANGO_SETTINGS_MODULE": module, "DATABASE_URL": "sqlite:///:memory:", **env})
    if module.endswith("production"):
        environ.update(
            {"SECRET_KEY": "x" * 50, "API_KEY_HASH_KEY": "h" * 50, "JWT_SIGNING_KEY": "j" * 50, "DEBUG": "false"}
        )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.production"])
def test_smtp_tls_url_with_credentials(module):
    got = _settings(
        module,
        EMAIL_URL="smtp+tls://mailer%40acme.example:s3cret@smtp.acme.example:587",
        DEFAULT_FROM_EMAIL="Acme <billing@acme.example>",
    )
    assert got["EMAIL_BACKEND"] == SMTP
    assert (got["EMAIL_HOST"], got["EMAIL_PORT"]) == ("smtp.acme.example", 587)
    assert (got["EMAIL_HOST_USER"], got["EMAIL_HOST_PASSWORD"]) == ("mailer@acme.example", "s3cret")
    assert (got["EMAIL_USE_TLS"], got["EMAIL_USE_SSL"]) == (True, False)
    assert got["DEFAULT_FROM_EMAIL"] == "Acme <billing@acme.example>"


def test_plain_smtp_and_ssl_urls():
    plain = _settings("config.settings.production", EMAIL_URL="smtp://127.0.0.1:2525")
    assert (plain["EMAIL_BACKEND"], plain["EMAIL_HOST"], plain["EMAIL_PORT"]) == (SMTP, "127.0.0.1", 2525)
    assert plain["EMAIL_USE_TLS"] is False and plain["EMAIL_USE_SSL"] is False
    ssl = _settings("config.settings.production", EMAIL_URL="smtp+ssl://u:p@mail.example:465")
    assert ssl["EMAIL_USE_SSL"] is True and ssl["EMAIL_PORT"] == 465


def test_make_run_keeps_sent_mail_in_a_folder_and_production_defaults_to_the_console():
    local = _settings("config.settings.local")
    assert local["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert local["EMAIL_FILE_PATH"] == str(ROOT / "var" / "sent-mail")
    assert _settings("config.settings.production")["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
