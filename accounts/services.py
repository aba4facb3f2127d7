"""Writes for merchants and API keys. Every key change invalidates the key's auth cache at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.cache import leased_invalidate
from core.exceptions import InvalidState, PermissionDenied, ValidationFailed

from . import keys, ratelimit, scopes
from .ipfilter import normalize_cidrs
from .models import APIKey, Merchant, RevokedToken
from .selectors import api_key_cache_key, forget_local_key_snapshot, key_bucket

logger = logging.getLogger("easypay.accounts")

USAGE_FLUSH_SECONDS = 60
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "permissions",
        "rate_limit_per_minute",
        "rate_limit_per_hour",
        "rate_limit_per_day",
        "ip_whitelist",
        "ip_blacklist",
        "expires_at",
    }
)

__all__ = [
    "CreatedKey",
    "api_key_cache_invalidate",
    "api_key_cache_invalidate_now_and_on_commit",
    "api_key_cache_key",
    "api_key_create",
    "api_key_revoke",
    "api_key_secret_rehash",
    "api_key_update",
    "api_key_usage_record",
    "api_keys_expire",
    "auth_cleanup",
    "merchant_get_or_create",
]


def api_key_cache_invalidate(key_id: str) -> None:
    """Every cached copy of the key is out of date: the shared cache entry and, through the key's
    version in the rate-limit store, each process's own copy (see ``selectors.local_key_snapshot``)."""
    leased_invalidate(api_key_cache_key(key_id))
    ratelimit.credential_version_bump(key_bucket(key_id))
    forget_local_key_snapshot(key_id)


def api_key_cache_invalidate_now_and_on_commit(key_id: str) -> None:
    """For a change made in the caller's transaction: now, so this process never serves the old
    snapshot; after commit, so a request that read the old row while the transaction was open (and
    cached it, or kept it as its process's copy under the version bumped "now") cannot keep it."""
    api_key_cache_invalidate(key_id)
    transaction.on_commit(lambda: api_key_cache_invalidate(key_id))


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


def _check_grant(*, permissions: list[str], granted_by: list[str] | None) -> None:
    """A credential can only hand out permissions it holds itself (``granted_by=None``: operator/CLI)."""
    if granted_by is None:
        return
    missing = scopes.covers(granted_by, permissions)
    if missing:
        raise PermissionDenied(
            f"A key cannot grant permissions its creator lacks: {', '.join(missing)}.",
            details={"permissions": missing},
        )


def _cidrs(field: str, values: list[str] | None) -> list[str]:
    """Stored IP rules are normalized networks (``10.1.2.3/8`` -> ``10.0.0.0/8``, an IPv4-mapped IPv6
    form -> its IPv4 network), whoever writes them (API, admin, command)."""
    normalized, invalid = normalize_cidrs(values or [])
    if invalid:
        raise ValidationFailed(
            "Invalid IP address or CIDR.",
            details={field: [f"'{v}' is not a valid IP address or CIDR." for v in invalid]},
        )
    return normalized


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
    granted_by: list[str] | None = None,
) -> CreatedKey:
    _check_grant(permissions=permissions, granted_by=granted_by)
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
        ip_whitelist=_cidrs("ip_whitelist", ip_whitelist),
        ip_blacklist=_cidrs("ip_blacklist", ip_blacklist),
        expires_at=expires_at,
    )
    logger.info("api key created", extra={"key_id": api_key.key_id, "merchant_id": str(merchant.pk)})
    return CreatedKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_update(*, api_key: APIKey, granted_by: list[str] | None = None, **changes) -> APIKey:
    """Change a key's settings (not its status: ``api_key_revoke`` does that). A revoked key is final."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    api_key = APIKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.status == APIKey.Status.REVOKED:
        raise InvalidState("A revoked API key cannot be changed.")
    if "permissions" in changes:
        _check_grant(permissions=changes["permissions"], granted_by=granted_by)
    for field in ("ip_whitelist", "ip_blacklist"):
        if field in changes:
            changes[field] = _cidrs(field, changes[field])
    for field, value in changes.items():
        setattr(api_key, field, value)
    if changes:
        api_key.save(update_fields=[*changes, "updated_at"])
    api_key_cache_invalidate_now_and_on_commit(api_key.key_id)
    return api_key


def api_key_secret_rehash(*, key_id: str, secret: str, old_hash: str) -> bool:
    """A key whose secret matched only under ``API_KEY_HASH_KEY_PREVIOUS`` (a hash key rotation is under
    way): store its hash under the current key. Conditional on the old hash, so concurrent requests
    write it once. Never fails the request that presented the key. -> whether this call re-hashed it."""
    try:
        updated = APIKey.objects.filter(key_id=key_id, key_secret_hash=old_hash).update(
            key_secret_hash=keys.hash_secret(secret), updated_at=timezone.now()
        )
    except DatabaseError as exc:
        logger.warning("api key re-hash failed", extra={"key_id": key_id, "error": type(exc).__name__})
        return False
    if updated:
        api_key_cache_invalidate_now_and_on_commit(key_id)
        logger.info("api key re-hashed under the current hash key", extra={"key_id": key_id})
    return bool(updated)


def api_key_revoke(*, api_key: APIKey) -> APIKey:
    """Revoke at once (idempotent): the key and every JWT minted from it answer 401 from now on."""
    now = timezone.now()
    APIKey.objects.filter(pk=api_key.pk, status=APIKey.Status.ACTIVE).update(
        status=APIKey.Status.REVOKED, revoked_at=now, updated_at=now
    )
    api_key.refresh_from_db()
    api_key_cache_invalidate_now_and_on_commit(api_key.key_id)
    logger.info("api key revoked", extra={"key_id": api_key.key_id, "merchant_id": str(api_key.merchant_id)})
    return api_key


def api_keys_expire(*, now: datetime | None = None) -> int:
    """Revoke active keys whose ``expires_at`` has passed (they already answer 401; this makes the
    stored status say so). Returns how many."""
    now = now or timezone.now()
    expired = APIKey.objects.filter(status=APIKey.Status.ACTIVE, expires_at__lte=now)
    key_ids = list(expired.values_list("key_id", flat=True))
    count = APIKey.objects.filter(key_id__in=key_ids, status=APIKey.Status.ACTIVE).update(
        status=APIKey.Status.REVOKED, revoked_at=now, updated_at=now
    )
    for key_id in key_ids:
        api_key_cache_invalidate_now_and_on_commit(key_id)
    return count


def api_key_usage_record(*, api_key_id: str, uses_to_flush: int | None = None) -> None:
    """Count a use; write ``usage_count``/``last_used_at`` at most once a minute per key.

    ``uses_to_flush`` given: the rate-limit script already counted this use in Redis, in the same
    round trip as the limits (``ratelimit.enforce(count_use=True)``), and says how many uses to add to
    the row now (0 within the minute). Otherwise (no Redis for the limits) the use is counted in the
    cache, and the first use after the minute marker expired (``cache.add`` succeeds for one request
    only) moves the cached count into the row. Either way: one ``UPDATE ... usage_count + n``.
    """
    if uses_to_flush is not None:
        if uses_to_flush > 0:
            _usage_flush(api_key_id, uses_to_flush)
        return
    counter = f"apikey:usage:{api_key_id}"
    try:
        try:
            cache.incr(counter)
        except ValueError:  # first use since the last flush: create it (or count on a racer's key)
            if not cache.add(counter, 1, 86400):
                cache.incr(counter)
        if not cache.add(f"apikey:usage:flush:{api_key_id}", 1, USAGE_FLUSH_SECONDS):
            return
        pending = int(cache.get(counter) or 0)
        if pending <= 0:
            return
        cache.decr(counter, pending)
    except ValueError as exc:
        # Usage statistics never fail a request.
        logger.warning("api key usage not recorded", extra={"api_key_id": api_key_id, "error": type(exc).__name__})
        return
    _usage_flush(api_key_id, pending)


def _usage_flush(api_key_id: str, uses: int) -> None:
    try:
        APIKey.objects.filter(pk=api_key_id).update(usage_count=F("usage_count") + uses, last_used_at=timezone.now())
    except DatabaseError as exc:
        # Usage statistics never fail a request.
        logger.warning("api key usage not recorded", extra={"api_key_id": api_key_id, "error": type(exc).__name__})


def auth_cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Housekeeping: expired outstanding/blacklisted refresh tokens, expired revoked-token rows, and
    expired keys marked revoked. Safe to run any number of times, concurrently too."""
    now = now or timezone.now()
    blacklisted = BlacklistedToken.objects.filter(token__expires_at__lte=now).count()
    expired_tokens = OutstandingToken.objects.filter(expires_at__lte=now)
    outstanding = expired_tokens.count()
    expired_tokens.delete()  # cascades to their blacklist rows
    revoked, _ = RevokedToken.objects.filter(expires_at__lte=now).delete()
    expired_keys = api_keys_expire(now=now)
    result = {
        "outstanding_tokens_deleted": outstanding,
        "blacklisted_tokens_deleted": blacklisted,
        "revoked_tokens_deleted": revoked,
        "api_keys_expired": expired_keys,
    }
    logger.info("auth cleanup", extra=result)
    return result
