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
from core.exceptions import APIKeyLimitReached, InvalidState, PermissionDenied, ValidationFailed

from . import keys, ratelimit, scopes
from .ipfilter import normalize_cidrs
from .models import APIKey, Merchant, RevokedToken
from .selectors import api_key_cache_key, forget_local_key_snapshot, key_bucket, merchant_max_active_api_keys

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
    "merchant_keys_invalidate",
    "merchant_limits_set",
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


MERCHANT_LIMIT_FIELDS = ("rate_limit_per_minute", "rate_limit_per_hour", "rate_limit_per_day", "max_active_api_keys")


def merchant_keys_invalidate(merchant: Merchant) -> None:
    """Authentication caches each key with its merchant's status and limits: drop those copies."""
    for key_id in APIKey.objects.filter(merchant=merchant).values_list("key_id", flat=True):
        api_key_cache_invalidate_now_and_on_commit(key_id)


@transaction.atomic
def merchant_suspend(*, merchant: Merchant) -> Merchant:
    """Suspend the merchant: from now on its API keys, and the tokens minted from them, are refused.

    Authentication caches each key with its merchant's status, so those copies are dropped now and
    again after the commit. Suspending a suspended merchant changes nothing.
    """
    return _merchant_status_set(merchant, Merchant.Status.SUSPENDED)


@transaction.atomic
def merchant_reactivate(*, merchant: Merchant) -> Merchant:
    """Lift a suspension: the merchant's keys that are still active work again."""
    return _merchant_status_set(merchant, Merchant.Status.ACTIVE)


def _merchant_status_set(merchant: Merchant, status: str) -> Merchant:
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    if locked.status != status:
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        merchant_keys_invalidate(locked)
    return locked


@transaction.atomic
def merchant_limits_set(*, merchant: Merchant, **limits: int | None) -> Merchant:
    """Staff/operator: the merchant's aggregate rate limits and active-key cap (``None``: the default)."""
    unknown = set(limits) - set(MERCHANT_LIMIT_FIELDS)
    if unknown:
        raise ValueError(f"not a merchant limit: {sorted(unknown)}")
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    for field, value in limits.items():
        if value is not None and value < 1:
            raise ValidationFailed(f"{field} must be a positive integer.", details={field: ["Must be at least 1."]})
        setattr(locked, field, value)
    if limits:
        locked.save(update_fields=[*limits, "updated_at"])
        merchant_keys_invalidate(locked)
    return locked


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


LIMIT_FIELDS = {"minute": "rate_limit_per_minute", "hour": "rate_limit_per_hour", "day": "rate_limit_per_day"}
DEFAULT_KEY_LIMITS = {"minute": 100, "hour": 1000, "day": 10000}


def _check_limits(*, limits: dict[str, int], max_limits: dict[str, int] | None) -> None:
    """A credential can only hand out limits up to its own (``max_limits=None``: operator/CLI/admin)."""
    if max_limits is None:
        return
    over = {
        LIMIT_FIELDS[window]: [f"At most {max_limits[window]} per {window} (the creating credential's own limit)."]
        for window, value in limits.items()
        if max_limits.get(window) and value > max_limits[window]
    }
    if over:
        raise PermissionDenied("A key cannot have higher rate limits than the credential creating it.", details=over)


def _check_key_cap(merchant: Merchant) -> Merchant:
    """Lock the merchant's row (concurrent creations queue here) and refuse a key past its cap."""
    locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
    cap = merchant_max_active_api_keys(locked)
    now = timezone.now()
    active = APIKey.objects.filter(merchant=locked, status=APIKey.Status.ACTIVE).exclude(expires_at__lte=now).count()
    if active >= cap:
        raise APIKeyLimitReached(
            f"This merchant has {active} active API keys, the most it may have ({cap}); revoke one first.",
            details={"active_keys": active, "max_active_keys": cap},
        )
    return locked


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
    rate_limit_per_minute: int | None = None,
    rate_limit_per_hour: int | None = None,
    rate_limit_per_day: int | None = None,
    ip_whitelist: list[str] | None = None,
    ip_blacklist: list[str] | None = None,
    expires_at: datetime | None = None,
    granted_by: list[str] | None = None,
    max_limits: dict[str, int] | None = None,
    enforce_key_cap: bool = True,
) -> CreatedKey:
    """``granted_by``/``max_limits``: the creating credential's permissions and rate limits, which the
    new key cannot exceed (``None``: an operator). A limit not given is the default (100/1000/10000),
    lowered to the creator's. ``enforce_key_cap``: refuse a key past the merchant's active-key cap
    (``APIKeyLimitReached``), counted under the merchant's row lock; off for the operator's command."""
    _check_grant(permissions=permissions, granted_by=granted_by)
    given = {"minute": rate_limit_per_minute, "hour": rate_limit_per_hour, "day": rate_limit_per_day}
    _check_limits(limits={w: v for w, v in given.items() if v is not None}, max_limits=max_limits)
    limits = {
        w: v if v is not None else min(DEFAULT_KEY_LIMITS[w], (max_limits or {}).get(w) or DEFAULT_KEY_LIMITS[w])
        for w, v in given.items()
    }
    if enforce_key_cap:
        merchant = _check_key_cap(merchant)
    secret = keys.new_secret()
    api_key = APIKey.objects.create(
        merchant=merchant,
        key_id=keys.new_key_id(mode),
        key_secret_hash=keys.hash_secret(secret),
        name=name,
        description=description,
        permissions=list(permissions),
        mode=mode,
        rate_limit_per_minute=limits["minute"],
        rate_limit_per_hour=limits["hour"],
        rate_limit_per_day=limits["day"],
        ip_whitelist=_cidrs("ip_whitelist", ip_whitelist),
        ip_blacklist=_cidrs("ip_blacklist", ip_blacklist),
        expires_at=expires_at,
    )
    logger.info("api key created", extra={"key_id": api_key.key_id, "merchant_id": str(merchant.pk)})
    return CreatedKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_update(
    *, api_key: APIKey, granted_by: list[str] | None = None, max_limits: dict[str, int] | None = None, **changes
) -> APIKey:
    """Change a key's settings (not its status: ``api_key_revoke`` does that). A revoked key is final.
    ``granted_by``/``max_limits`` as for ``api_key_create``."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    api_key = APIKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.status == APIKey.Status.REVOKED:
        raise InvalidState("A revoked API key cannot be changed.")
    if "permissions" in changes:
        _check_grant(permissions=changes["permissions"], granted_by=granted_by)
    _check_limits(
        limits={w: changes[f] for w, f in LIMIT_FIELDS.items() if changes.get(f) is not None}, max_limits=max_limits
    )
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
