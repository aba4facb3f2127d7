"""The merchant's notification settings: what is read when deciding to send, and the one write."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.cache import leased_fill, leased_invalidate, leased_read

from ..models import KIND_DEFAULTS, NotificationSettings

SETTINGS_FIELDS = (
    *KIND_DEFAULTS,
    "renewal_reminder_days",
    "sms_enabled",
    "sender_name",
    "reply_to",
    "support_email",
    "alert_email",
    "timezone",
)


# Read for every captured payment with a customer email (its receipt), so kept in the cache: the
# ORM SELECT cost about 8 % of a POST /payments' CPU. Cache-aside with leases (core.cache): the one
# write below invalidates, and a read that raced it can never store the old row.
CACHE_SECONDS = 300
_FIELDS = NotificationSettings._meta.concrete_fields


def _cache_key(merchant_id) -> str:
    return f"notifications:settings:{merchant_id}"


def settings_for(*, merchant_id) -> NotificationSettings:
    """The merchant's settings, or the defaults (unsaved) when it never changed them."""
    key = _cache_key(merchant_id)
    values, lease = leased_read(key)
    if values is None:
        found = NotificationSettings.objects.filter(merchant_id=merchant_id).first()
        # JSON (core.cache): ids and times as text, turned back by each field's to_python below.
        values = {"id": None} if found is None else {f.attname: f.value_to_string(found) for f in _FIELDS}
        leased_fill(key, values, lease=lease, ttl=CACHE_SECONDS)
    if values["id"] is None:
        return NotificationSettings(merchant_id=merchant_id)
    return NotificationSettings.from_db(
        "default", [f.attname for f in _FIELDS], [f.to_python(values[f.attname]) for f in _FIELDS]
    )


def notification_settings_update(*, merchant, changes: dict[str, Any]) -> NotificationSettings:
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}")
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(merchant=merchant)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
        # Now (this thread's next read sees the change) and once it commits (no read in between fills).
        leased_invalidate(_cache_key(merchant.pk))
        transaction.on_commit(lambda: leased_invalidate(_cache_key(merchant.pk)))
    return row
