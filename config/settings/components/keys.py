"""Secrets: Django's SECRET_KEY and the API key / JWT keys of their own (production.py refuses the
development values)."""

from __future__ import annotations

from .env import env

DEV_SECRET_KEY = "django-insecure-easypay-dev-only-change-me"  # noqa: S105 (refused by production.py)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
# Secrets of their own, so that rotating SECRET_KEY (sessions, CSRF, the admin) breaks no API key and
# no JWT. ``*_PREVIOUS``: the value being rotated out, still accepted for a window (README, operations).
# API keys verified under the previous hash key are re-hashed under the current one on use.
DEV_API_KEY_HASH_KEY = "easypay-dev-only-api-key-hash-key-change-me"  # refused by production.py
DEV_JWT_SIGNING_KEY = "easypay-dev-only-jwt-signing-key-change-me"  # refused by production.py
API_KEY_HASH_KEY = env.str("API_KEY_HASH_KEY", default=None) or DEV_API_KEY_HASH_KEY
API_KEY_HASH_KEY_PREVIOUS = env.str("API_KEY_HASH_KEY_PREVIOUS", default=None) or ""
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default=None) or DEV_JWT_SIGNING_KEY
JWT_SIGNING_KEY_PREVIOUS = env.str("JWT_SIGNING_KEY_PREVIOUS", default=None) or ""
