"""The merchant's notification settings: what is read when deciding to send, and the one write."""

from __future__ import annotations

from typing import Any

from django.db import transaction

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


def settings_for(*, merchant_id) -> NotificationSettings:
    """The merchant's settings, or the defaults (unsaved) when it never changed them."""
    found = NotificationSettings.objects.filter(merchant_id=merchant_id).first()
    return found or NotificationSettings(merchant_id=merchant_id)


def notification_settings_update(*, merchant, changes: dict[str, Any]) -> NotificationSettings:
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}")
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(merchant=merchant)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
    return row
