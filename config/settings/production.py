"""Production settings: refuse to start with development secrets or DEBUG on."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    API_KEY_HASH_KEY,
    API_KEY_HASH_KEY_PREVIOUS,
    DEBUG,
    DEV_API_KEY_HASH_KEY,
    DEV_JWT_SIGNING_KEY,
    DEV_SECRET_KEY,
    JWT_SIGNING_KEY,
    JWT_SIGNING_KEY_PREVIOUS,
    SECRET_KEY,
)
from .components.env import env

if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set SECRET_KEY to a random value of at least 32 characters in production.")
# API keys and JWTs have secrets of their own: rotating SECRET_KEY must not invalidate them.
_dev_values = (DEV_SECRET_KEY, DEV_API_KEY_HASH_KEY, DEV_JWT_SIGNING_KEY)
for _name, _value, _previous in (
    ("API_KEY_HASH_KEY", API_KEY_HASH_KEY, API_KEY_HASH_KEY_PREVIOUS),
    ("JWT_SIGNING_KEY", JWT_SIGNING_KEY, JWT_SIGNING_KEY_PREVIOUS),
):
    if _value in _dev_values or len(_value) < 32:
        raise ImproperlyConfigured(f"Set {_name} to a random value of at least 32 characters in production.")
    if _value == SECRET_KEY:
        raise ImproperlyConfigured(f"{_name} must differ from SECRET_KEY (each is rotated on its own).")
    if _previous and _previous == _value:
        raise ImproperlyConfigured(f"{_name}_PREVIOUS must be the value being rotated out, not the current one.")
if API_KEY_HASH_KEY == JWT_SIGNING_KEY:
    raise ImproperlyConfigured("API_KEY_HASH_KEY and JWT_SIGNING_KEY must differ.")
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")

# Staff who can move money (refund, capture, void) log in with a TOTP code (accounts/staff_auth.py).
STAFF_OTP_REQUIRED = env.bool("STAFF_OTP_REQUIRED", default=True)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Talking to the real Authorize.Net with the emulator's well-known credentials is a misconfiguration.
from .base import (  # noqa: E402
    AUTHORIZE_NET_API_LOGIN_ID,
    AUTHORIZE_NET_ENDPOINT,
    AUTHORIZE_NET_SIGNATURE_KEY,
    EMULATOR_API_LOGIN_ID,
    EMULATOR_SIGNATURE_KEY,
)

_real_anet = AUTHORIZE_NET_ENDPOINT in ("sandbox", "production") or "authorize.net" in AUTHORIZE_NET_ENDPOINT
_default_creds = AUTHORIZE_NET_API_LOGIN_ID == EMULATOR_API_LOGIN_ID or (
    AUTHORIZE_NET_SIGNATURE_KEY == EMULATOR_SIGNATURE_KEY
)
if _real_anet and _default_creds:
    raise ImproperlyConfigured(
        "Set AUTHORIZE_NET_API_LOGIN_ID, AUTHORIZE_NET_TRANSACTION_KEY and AUTHORIZE_NET_SIGNATURE_KEY "
        "to your Authorize.Net credentials: the defaults are the local emulator's."
    )
