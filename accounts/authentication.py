"""DRF authentication by ``X-API-Key`` (cache-aside, the design's "Authentication Flow")."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from core.exceptions import AuthenticationFailed

from . import keys
from .models import APIKey
from .principal import MerchantPrincipal
from .services import api_key_cache_key

API_KEY_CACHE_SECONDS = 300


def _key_snapshot(api_key: APIKey) -> dict:
    """What authentication needs of a key, as plain data the cache can hold."""
    return {
        "pk": str(api_key.pk),
        "key_id": api_key.key_id,
        "hash": api_key.key_secret_hash,
        "merchant_id": str(api_key.merchant_id),
        "merchant_active": api_key.merchant.status == "active",
        "permissions": list(api_key.permissions),
        "status": api_key.status,
        "mode": api_key.mode,
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
        "limits": {
            "minute": api_key.rate_limit_per_minute,
            "hour": api_key.rate_limit_per_hour,
            "day": api_key.rate_limit_per_day,
        },
        "ip_whitelist": list(api_key.ip_whitelist or []),
        "ip_blacklist": list(api_key.ip_blacklist or []),
    }


def load_key_snapshot(key_id: str) -> dict | None:
    cache_key = api_key_cache_key(key_id)
    snapshot = cache.get(cache_key)
    if snapshot is None:
        api_key = APIKey.objects.select_related("merchant").filter(key_id=key_id).first()
        if api_key is None:
            return None
        snapshot = _key_snapshot(api_key)
        cache.set(cache_key, snapshot, API_KEY_CACHE_SECONDS)
    return snapshot


class APIKeyAuthentication(BaseAuthentication):
    header = "X-API-Key"

    def authenticate(self, request):
        raw = request.headers.get(self.header)
        if raw is None:
            return None
        parts = keys.split_key(raw)
        if parts is None:
            raise AuthenticationFailed("Malformed API key.")
        key_id, secret = parts
        snapshot = load_key_snapshot(key_id)
        # Same failure for unknown id and wrong secret: no oracle for valid key ids.
        if snapshot is None or not keys.secret_matches(secret, snapshot["hash"]):
            raise AuthenticationFailed("Invalid API key.")
        if snapshot["status"] != APIKey.Status.ACTIVE:
            raise AuthenticationFailed("This API key has been revoked.")
        if snapshot["expires_at"] and datetime.fromisoformat(snapshot["expires_at"]) <= timezone.now():
            raise AuthenticationFailed("This API key has expired.")
        if not snapshot["merchant_active"]:
            raise AuthenticationFailed("This merchant account is suspended.")
        principal = MerchantPrincipal(
            merchant_id=snapshot["merchant_id"],
            permissions=snapshot["permissions"],
            mode=snapshot["mode"],
            credential_type="api_key",
            api_key_id=snapshot["pk"],
            key_id=key_id,
            limits=snapshot["limits"],
        )
        return principal, snapshot

    def authenticate_header(self, request):
        return 'ApiKey realm="api"'


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}
