"""Merchant webhook endpoints: create, change, delete, rotate the signing secret, and the cached list
of a merchant's active endpoints that recording an event reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.exceptions import ValidationFailed

from .. import urlguard
from ..catalogue import EVENT_TYPES
from ..models import EventDelivery, WebhookEndpoint, new_endpoint_secret

# The merchant's active endpoints (id, subscribed types), cached so recording an event costs no
# SELECT. Every endpoint write goes through the services below, which replace the entry with a
# "stale" marker before their change and again once it commits. While the marker is there (and on any
# miss) the list is read from the database, and a reader stores what it read only with ``add`` (set
# if absent): a reader that read the old rows just before a change commits can never overwrite the
# marker with them. So a new or re-activated endpoint is never hidden, and a deactivated one gets no
# new deliveries once its change commits (one recorded concurrently is skipped when attempted).
_ENDPOINTS_CACHE_SECONDS = 60
_ENDPOINTS_STALE = "stale"
_ENDPOINTS_STALE_SECONDS = 120


def _endpoints_cache_key(merchant_id) -> str:
    return f"webhooks:endpoints:v2:{merchant_id}"


def _active_endpoints(merchant_id) -> list:
    key = _endpoints_cache_key(merchant_id)
    cached = cache.get(key)
    if cached is not None and cached != _ENDPOINTS_STALE:
        return cached["rows"]
    rows = [
        (str(pk), tuple(events))
        for pk, events in WebhookEndpoint.objects.active().filter(merchant_id=merchant_id).values_list("pk", "events")
    ]
    if cached is None:
        # Wrapped: django-prometheus's in-process cache answers None for a falsy value such as [].
        cache.add(key, {"rows": rows}, _ENDPOINTS_CACHE_SECONDS)
    return rows


def _endpoints_cache_invalidate(merchant_id) -> None:
    """Mark the merchant's endpoint list stale now and again once the caller's transaction commits."""
    key = _endpoints_cache_key(merchant_id)
    cache.set(key, _ENDPOINTS_STALE, _ENDPOINTS_STALE_SECONDS)
    transaction.on_commit(lambda: cache.set(key, _ENDPOINTS_STALE, _ENDPOINTS_STALE_SECONDS))


def _validated_events(events: list[str]) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationFailed(details={"events": ['Give at least one event type, or ["*"].']})
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(details={"events": [f"Unknown event type: {e!r}." for e in unknown]})
    if "*" in events:
        return ["*"]
    return list(dict.fromkeys(events))


def _validated_url(url: str) -> str:
    try:
        urlguard.validate_for_save(url)
    except urlguard.UnsafeURL as exc:
        raise ValidationFailed(details={"url": [str(exc)]}) from None
    return url


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def endpoint_create(
    *, merchant, url: str, events: list[str], description: str = "", is_active: bool = True
) -> EndpointWithSecret:
    url = _validated_url(url)
    events = _validated_events(events)
    with transaction.atomic():
        # Serialise creations per merchant so the endpoint cap holds under concurrency.
        type(merchant).objects.select_for_update().filter(pk=merchant.pk).first()
        existing = WebhookEndpoint.objects.live().filter(merchant=merchant).count()
        if existing >= settings.WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT:
            raise ValidationFailed(
                f"A merchant can have at most {settings.WEBHOOK_MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints.",
                details={"url": ["Too many webhook endpoints."]},
            )
        _endpoints_cache_invalidate(merchant.pk)
        endpoint = WebhookEndpoint.objects.create(
            merchant=merchant, url=url, events=events, description=description, is_active=is_active
        )
    return EndpointWithSecret(endpoint=endpoint, secret=endpoint.secret)


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    allowed = {"url", "events", "description", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")
    if "url" in changes:
        changes["url"] = _validated_url(changes["url"])
    if "events" in changes:
        changes["events"] = _validated_events(changes["events"])
    for field, value in changes.items():
        setattr(endpoint, field, value)
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        endpoint.save(update_fields=[*changes, "updated_at"])
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Soft delete: no more deliveries, gone from the API; pending deliveries end as failed."""
    now = timezone.now()
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, deleted_at=now, updated_at=now)
        EventDelivery.objects.filter(endpoint=endpoint, status=EventDelivery.Status.PENDING).update(
            status=EventDelivery.Status.FAILED,
            last_error="The endpoint was deleted.",
            next_attempt_at=None,
            completed_at=now,
            updated_at=now,
        )


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, grace_hours: float | None = None) -> EndpointWithSecret:
    """A new secret signs from now on; the old one keeps signing too (a second ``v1``) for the grace
    period (``WEBHOOK_SECRET_ROTATION_GRACE_HOURS``), so receivers can switch without losing events."""
    grace = settings.WEBHOOK_SECRET_ROTATION_GRACE_HOURS if grace_hours is None else grace_hours
    now = timezone.now()
    with transaction.atomic():
        _endpoints_cache_invalidate(endpoint.merchant_id)
        row = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        row.previous_secret = row.secret if grace > 0 else ""
        row.previous_secret_expires_at = now + timedelta(hours=grace) if grace > 0 else None
        row.secret = new_endpoint_secret()
        row.secret_rotated_at = now
        row.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at", "updated_at"]
        )
    return EndpointWithSecret(endpoint=row, secret=row.secret)
