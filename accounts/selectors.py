"""Reads for merchants, API keys and merchant users, including the cached key snapshot auth uses."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from core.cache import leased_fill, leased_read

from . import keys, ratelimit
from .models import APIKey, Merchant, MerchantUser

API_KEY_CACHE_SECONDS = 300
# In-process copies of API keys (see ``local_key_snapshot``): at most this old, at most this many.
LOCAL_SNAPSHOT_SECONDS = 60
LOCAL_SNAPSHOT_MAX = 10_000
_local_snapshots: dict[str, tuple[dict, int, float]] = {}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def api_key_cache_key(key_id: str) -> str:
    return f"apikey:v3:{key_id}"


def merchant_limit_overrides(merchant: Merchant) -> dict[str, int | None]:
    """The limits staff set on the merchant (``None``: the settings' default)."""
    return {
        "minute": merchant.rate_limit_per_minute,
        "hour": merchant.rate_limit_per_hour,
        "day": merchant.rate_limit_per_day,
    }


def merchant_rate_limits(overrides: dict[str, int | None] | None) -> dict[str, int]:
    """The merchant's aggregate limits: its own where staff set them, else ``MERCHANT_RATE_LIMITS``."""
    defaults = settings.MERCHANT_RATE_LIMITS
    overrides = overrides or {}
    return {name: int(overrides.get(name) or defaults[name]) for name in ("minute", "hour", "day")}


def merchant_max_active_api_keys(merchant: Merchant) -> int:
    return merchant.max_active_api_keys or settings.API_KEY_MAX_ACTIVE_PER_MERCHANT


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
        "merchant_limits": merchant_limit_overrides(api_key.merchant),
        "ip_whitelist": list(api_key.ip_whitelist or []),
        "ip_blacklist": list(api_key.ip_blacklist or []),
    }


def load_key_snapshot(key_id: str) -> dict | None:
    """Cache-aside read of a key (the design's "Authentication Flow"); every key write invalidates it.
    Leased (``core.cache``): a read that raced a revocation can never cache the key as it was."""
    cache_key = api_key_cache_key(key_id)
    snapshot, lease = leased_read(cache_key)
    if snapshot is None:
        api_key = APIKey.objects.select_related("merchant").filter(key_id=key_id).first()
        if api_key is None:
            return None
        snapshot = _key_snapshot(api_key)
        leased_fill(cache_key, snapshot, lease=lease, ttl=API_KEY_CACHE_SECONDS)
    return snapshot


def key_bucket(key_id: str) -> str:
    """The key's name in the rate-limit store: its windows, use counter and version live under it."""
    return f"key:{key_id}"


def local_key_snapshot(key_id: str) -> tuple[dict, int] | None:
    """This process's copy of a key and the version it was read at, or ``None``.

    The copy saves the cache round trip of ``load_key_snapshot`` on every request. It is trusted only
    once the rate-limit script (which runs for every request anyway) answers that the key's version
    is still this one: every change of a key bumps it (``accounts.services.api_key_cache_invalidate``),
    so a revoked key stops working at once in every process. Copies older than
    ``LOCAL_SNAPSHOT_SECONDS`` are dropped, which bounds what a Redis that lost its data could hide.
    """
    entry = _local_snapshots.get(key_id)
    if entry is None:
        return None
    snapshot, version, loaded = entry
    if time.monotonic() - loaded > LOCAL_SNAPSHOT_SECONDS:
        _local_snapshots.pop(key_id, None)
        return None
    return snapshot, version


def load_local_key_snapshot(key_id: str) -> tuple[dict | None, int] | None:
    """Read the key's version, *then* its row, and keep both as this process's copy.

    In that order a change committed in between leaves a copy with the old version, which the next
    request finds out of date; the other way round an old row could be kept under the new version.
    ``(None, version)`` when there is no such key; ``None`` when the version cannot be known (no Redis
    rate-limit store, Redis down).
    """
    version = ratelimit.credential_version(key_bucket(key_id))
    if version is None:
        return None
    api_key = APIKey.objects.select_related("merchant").filter(key_id=key_id).first()
    if api_key is None:
        return None, version
    snapshot = _key_snapshot(api_key)
    if len(_local_snapshots) >= LOCAL_SNAPSHOT_MAX:
        _local_snapshots.clear()
    _local_snapshots[key_id] = (snapshot, version, time.monotonic())
    return snapshot, version


def forget_local_key_snapshot(key_id: str | None = None) -> None:
    """Drop this process's copy of one key (or of every key)."""
    if key_id is None:
        _local_snapshots.clear()
    else:
        _local_snapshots.pop(key_id, None)


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
