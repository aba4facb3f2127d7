"""Staff login to /admin/: lockout by username and client IP (django-axes), TOTP second factors
(django-otp), required for staff who can move money when STAFF_OTP_REQUIRED (production)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/admin/login/"
PASSWORD = "Staff-Passw0rd-long-enough"


@pytest.fixture(autouse=True)
def _groups(db):
    from audit.staff_groups import staff_groups_setup

    staff_groups_setup()


@pytest.fixture
def staff(django_user_model):
    """``staff("finance")`` -> a staff user in that group (``None``: no group, no money permission)."""

    def _make(group: str | None = "finance", username: str | None = None):
        user = django_user_model.objects.create_user(
            username=username or f"{group or 'viewer'}-staff", password=PASSWORD, is_staff=True
        )
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    return _make


def _login(client: Client, username: str, password: str = PASSWORD, otp: str = "", **extra):
    return client.post(
        LOGIN, {"username": username, "password": password, "otp_token": otp, "next": "/admin/"}, **extra
    )


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _token(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _enrol(user) -> tuple[TOTPDevice, str]:
    out = io.StringIO()
    call_command("otp_enrol_totp", user.username, "--no-qr", stdout=out)
    return TOTPDevice.objects.get(user=user), out.getvalue()


# --- lockout ---------------------------------------------------------------------------------------


def test_the_sixth_attempt_is_locked_out_even_with_the_right_password(staff):
    user = staff("finance")
    client = Client()
    codes = [_login(client, user.username, "wrong password").status_code for _ in range(5)]
    assert codes == [200] * 4 + [429]  # the fifth failure locks the pair out
    assert not _logged_in(client)
    locked = _login(client, user.username)
    assert locked.status_code == 429
    assert not _logged_in(client)
    # The same user from another address is not locked out (username + IP).
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert _login(other, user.username).status_code == 302
    assert _logged_in(other)


def test_the_lockout_expires(staff, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    user = staff("finance")
    client = Client()
    for _ in range(5):
        _login(client, user.username, "wrong password")
    assert _login(client, user.username).status_code == 429
    time.sleep(1.2)
    assert _login(client, user.username).status_code == 302
    assert _logged_in(client)


def test_behind_trusted_proxies_the_forwarded_client_is_locked_out(staff, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    user = staff("finance")
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(5):
        _login(attacker, user.username, "wrong password")
    assert _login(attacker, user.username).status_code == 429
    # Rotating a forged left-most X-Forwarded-For does not get the attacker a fresh budget...
    forged = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.66")
    assert _login(forged, user.username).status_code == 429
    # ...and the real user behind the same proxy, from another address, still logs in.
    colleague = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert _login(colleague, user.username).status_code == 302


def test_api_user_logins_are_not_counted_by_the_admin_lockout(staff, anon_client, caplog):
    user = staff("finance")
    for _ in range(6):
        response = anon_client.post(
            "/api/v1/auth/tokens", {"username": user.username, "password": "wrong"}, format="json"
        )
        assert response.status_code == 401
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    client = Client()
    assert _login(client, user.username).status_code == 302


# --- second factors --------------------------------------------------------------------------------


def test_otp_is_required_for_money_moving_staff_in_production(staff, settings):
    settings.STAFF_OTP_REQUIRED = True
    for group in ("finance", "support"):
        user = staff(group)
        client = Client()
        refused = _login(client, user.username)
        assert refused.status_code == 200
        assert b"needs a second factor" in refused.content
        assert not _logged_in(client)
    # Staff who cannot move money are not asked for one.
    viewer = staff(None)
    client = Client()
    assert _login(client, viewer.username).status_code == 302


def test_a_session_without_a_verified_device_does_not_open_the_admin_in_production(staff, settings):
    settings.STAFF_OTP_REQUIRED = True
    client = Client()
    client.force_login(staff("finance"))
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_a_valid_totp_token_logs_in(staff, settings):
    settings.STAFF_OTP_REQUIRED = True
    user = staff("finance")
    device, output = _enrol(user)
    assert "otpauth://totp/" in output and "not shown again" in output
    client = Client()
    response = _login(client, user.username, otp=_token(device))
    assert response.status_code == 302, response.content[-2000:]
    assert _logged_in(client)
    assert client.get("/admin/").status_code == 200


def test_an_invalid_totp_token_does_not_log_in_and_counts_as_a_failure(staff, settings):
    settings.STAFF_OTP_REQUIRED = True
    user = staff("finance")
    device, _ = _enrol(user)
    good = _token(device)
    bad = f"{(int(good) + 1) % 10**device.digits:0{device.digits}d}"
    client = Client()
    for attempt in ("", bad):
        response = _login(client, user.username, otp=attempt)
        assert response.status_code == 200
        assert not _logged_in(client)
    assert b"Invalid one-time code" in response.content
    for _ in range(3):
        _login(client, user.username, otp=bad)
    assert _login(client, user.username, otp=good).status_code == 429  # 5 wrong codes: locked out
    assert not _logged_in(client)


def test_an_enrolled_user_needs_the_code_even_in_development(staff, settings):
    settings.STAFF_OTP_REQUIRED = False
    user = staff("finance")
    device, _ = _enrol(user)
    client = Client()
    assert _login(client, user.username).status_code == 200
    assert not _logged_in(client)
    assert _login(client, user.username, otp=_token(device)).status_code == 302


def test_development_logs_in_without_otp(django_user_model, settings):
    settings.STAFF_OTP_REQUIRED = False
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin")
    client = Client()
    assert _login(client, "admin", "admin").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_login_page_asks_for_the_code():
    page = Client().get(LOGIN)
    assert page.status_code == 200
    assert b'name="otp_token"' in page.content


def test_enrolment_is_shown_once(staff):
    user = staff("finance")
    _enrol(user)
    with pytest.raises(CommandError, match="already has a TOTP device"):
        _enrol(user)
    out = io.StringIO()
    call_command("otp_enrol_totp", user.username, "--replace", stdout=out)
    assert "otpauth://totp/" in out.getvalue()  # the QR code is printed too
    assert TOTPDevice.objects.filter(user=user).count() == 1


def test_production_settings_require_otp():
    code = (
        "import django, json; from django.conf import settings; django.setup(); "
        "print(json.dumps(settings.STAFF_OTP_REQUIRED))"
    )
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="s" * 50,
        API_KEY_HASH_KEY="h" * 50,
        JWT_SIGNING_KEY="j" * 50,
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) is True
