"""Staff login to the back office: lockout after failed attempts (django-axes) and TOTP second factors
(django-otp).

- Axes counts failed ``/admin/login/`` attempts per username and client IP (the same client IP as the
  API's, ``TRUSTED_PROXIES`` included) and locks that pair out for ``AXES_COOLOFF_TIME`` after
  ``AXES_FAILURE_LIMIT`` failures, even for the right password. Logins elsewhere (the API's
  ``POST /auth/tokens`` has its own failure budgets) are not its business (``axes_not_admin``).
- The login form asks for a one-time code. It is required from every staff user who has a confirmed
  TOTP device, and with ``STAFF_OTP_REQUIRED`` (on in production settings) from every staff user who
  can move money (refund, capture, void): such a user without a device cannot log in at all, and a
  session not verified by a device does not open the admin. A wrong code counts as a failed login.
- Devices are enrolled with ``manage.py otp_enrol_totp USERNAME``, which shows the provisioning URI
  (and a QR code) once; the admin never shows a device's key again (``OTP_ADMIN_HIDE_SENSITIVE_DATA``).
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django_otp import devices_for_user

from .ipfilter import client_ip

MONEY_PERMISSIONS = (
    "audit.refund_payment",
    "audit.refund_payment_unlimited",
    "audit.capture_payment",
    "audit.void_payment",
)


def axes_client_ip(request) -> str | None:
    """Axes' client IP: ``X-Forwarded-For`` believed only from ``TRUSTED_PROXIES`` (``ipfilter``)."""
    address = client_ip(request)
    return str(address) if address is not None else None


def axes_not_admin(request, credentials=None) -> bool:
    """Axes' whitelist: every login that is not the admin's (the API guards its own)."""
    return not (getattr(request, "path", "") or "").startswith("/admin/")


class StaffLockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check (first in ``AUTHENTICATION_BACKENDS``); a call without a request (a script,
    a shell) has nothing to lock out by and goes to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def can_move_money(user) -> bool:
    if not (user and user.is_active and user.is_staff):
        return False
    return user.is_superuser or any(user.has_perm(p) for p in MONEY_PERMISSIONS)


def otp_required(user) -> bool:
    """Whether this staff user must pass a second factor to use the admin."""
    if settings.STAFF_OTP_REQUIRED and can_move_money(user):
        return True
    return bool(confirmed_devices(user))


def confirmed_devices(user) -> list:
    if user is None or not getattr(user, "pk", None):
        return []
    return list(devices_for_user(user, confirmed=True))


class StaffAuthenticationForm(AdminAuthenticationForm):
    """Username, password and, when the user needs one, a TOTP code."""

    otp_token = forms.CharField(
        required=False,
        max_length=16,
        label="One-time code",
        help_text="From your authenticator app (required for staff who can move money in production).",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_not_enrolled": (
            "Your role can move money, so it needs a second factor, and you have none yet. Ask an "
            "administrator to enrol a TOTP device for you (manage.py otp_enrol_totp USERNAME)."
        ),
        "otp_required": "Enter the one-time code from your authenticator app.",
        "otp_invalid": "Invalid one-time code.",
    }

    def clean(self):
        cleaned = super().clean()  # the password (through axes' lockout check)
        user = self.get_user()
        if user is None:
            return cleaned
        devices = confirmed_devices(user)
        if not devices:
            if otp_required(user):
                raise forms.ValidationError(self.error_messages["otp_not_enrolled"], code="otp_not_enrolled")
            return cleaned
        token = (cleaned.get("otp_token") or "").strip()
        if not token:
            raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
        for device in devices:
            allowed, _ = device.verify_is_allowed()
            if allowed and device.verify_token(token):
                # django-otp puts it in the session at login (an attribute the User type does not declare).
                user.otp_device = device  # type: ignore[attr-defined]
                return cleaned
        # A wrong code is a failed login: axes counts it against this username and address.
        user_login_failed.send(
            sender=__name__,
            credentials={"username": cleaned.get("username")},
            request=self.request,
        )
        raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")


class EasyPayAdminSite(admin.AdminSite):
    """The admin site: staff login with lockout and second factors (see the module docstring)."""

    login_form = StaffAuthenticationForm
    login_template = "admin/easypay/login.html"

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        user = request.user
        is_verified = getattr(user, "is_verified", None)
        if is_verified is not None and is_verified():
            return True
        return not otp_required(user)
