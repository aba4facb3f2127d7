"""Writes for merchants and API keys. Every key change invalidates the key's auth cache at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from . import keys
from .models import APIKey, Merchant


def api_key_cache_key(key_id: str) -> str:
    return f"apikey:v1:{key_id}"


def api_key_cache_invalidate(key_id: str) -> None:
    cache.delete(api_key_cache_key(key_id))


@dataclass(frozen=True)
class CreatedKey:
    api_key: APIKey
    secret: str

    @property
    def key(self) -> str:
        return keys.full_key(self.api_key.key_id, self.secret)


def merchant_get_or_create(*, name: str, email: str = "") -> tuple[Merchant, bool]:
    merchant, created = Merchant.objects.get_or_create(name=name, defaults={"email": email})
    return merchant, created


@transaction.atomic
def api_key_create(
    *,
    merchant: Merchant,
    name: str,
    permissions: list[str],
    description: str = "",
    mode: str = APIKey.Mode.TEST,
    rate_limit_per_minute: int = 100,
    rate_limit_per_hour: int = 1000,
    rate_limit_per_day: int = 10000,
    ip_whitelist: list[str] | None = None,
    ip_blacklist: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    secret = keys.new_secret()
    api_key = APIKey.objects.create(
        merchant=merchant,
        key_id=keys.new_key_id(mode),
        key_secret_hash=keys.hash_secret(secret),
        name=name,
        description=description,
        permissions=list(permissions),
        mode=mode,
        rate_limit_per_minute=rate_limit_per_minute,
        rate_limit_per_hour=rate_limit_per_hour,
        rate_limit_per_day=rate_limit_per_day,
        ip_whitelist=list(ip_whitelist or []),
        ip_blacklist=list(ip_blacklist or []),
        expires_at=expires_at,
    )
    return CreatedKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: APIKey) -> APIKey:
    APIKey.objects.filter(pk=api_key.pk).update(
        status=APIKey.Status.REVOKED, revoked_at=timezone.now(), updated_at=timezone.now()
    )
    api_key.refresh_from_db()
    transaction.on_commit(lambda: api_key_cache_invalidate(api_key.key_id))
    api_key_cache_invalidate(api_key.key_id)
    return api_key
