"""Reads for merchants, API keys and merchant users, including the cached key snapshot auth uses."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from . import keys
from .models import APIKey, MerchantUser

API_KEY_CACHE_SECONDS = 300
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def api_key_cache_key(key_id: str) -> str:
    return f"apikey:v1:{key_id}"


def api_key_list(*, merchant_id) -> QuerySet[APIKey]:
    return APIKey.objects.filter(merchant_id=merchant_id)


def api_key_get(*, merchant_id, lookup: str) -> APIKey | None:
    """A merchant's key by its ``id`` (UUID) or its public ``key_id``; ``None`` for anything else,
    including another merchant's key and a malformed id (both answer 404)."""
    queryset = api_key_list(merchant_id=merchant_id)
    if _UUID_RE.match(lookup or ""):
        return queryset.filter(pk=uuid.UUID(lookup)).first()
    if keys.KEY_ID_RE.match(lookup or ""):
        return queryset.filter(key_id=lookup).first()
    return None


def _key_snapshot(api_key: APIKey) -> dict:
    """What authentication needs of a key, as plain data the cache can hold."""
    return {
        "pk": str(api_key.pk),
        "key_id": api_key.key_id,
        "hash": api_key.key_secret_hash,
        "merchant_id": str(api_key.merchant_id),
        "merchant_name": api_key.merchant.name,
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
    """Cache-aside read of a key (the design's "Authentication Flow"); every key write invalidates it."""
    cache_key = api_key_cache_key(key_id)
    snapshot = cache.get(cache_key)
    if snapshot is None:
        api_key = APIKey.objects.select_related("merchant").filter(key_id=key_id).first()
        if api_key is None:
            return None
        snapshot = _key_snapshot(api_key)
        cache.set(cache_key, snapshot, API_KEY_CACHE_SECONDS)
    return snapshot


def key_snapshot_problem(snapshot: dict) -> str | None:
    """Why a (correctly presented) key may not be used now, or ``None`` when it may."""
    if snapshot["status"] != APIKey.Status.ACTIVE:
        return "This API key has been revoked."
    if snapshot["expires_at"] and datetime.fromisoformat(snapshot["expires_at"]) <= timezone.now():
        return "This API key has expired."
    if not snapshot["merchant_active"]:
        return "This merchant account is suspended."
    return None


def merchant_user_get(*, user_id) -> MerchantUser | None:
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        return None
    return MerchantUser.objects.select_related("user", "merchant").filter(user_id=user_id).first()


def merchant_user_problem(membership: MerchantUser | None) -> str | None:
    if membership is None:
        return "This user does not belong to a merchant."
    if not membership.user.is_active:
        return "This user account is disabled."
    if membership.merchant.status != "active":
        return "This merchant account is suspended."
    return None
