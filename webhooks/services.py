"""Writes for webhooks: recording events (the outbox)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import Event

EVENT_TYPES = (
    "payment.authorized",
    "payment.captured",
    "payment.declined",
    "payment.failed",
    "payment.held",
    "payment.refunded",
    "payment.partially_refunded",
    "payment.voided",
    "payment.settled",
    "subscription.created",
    "subscription.updated",
    "subscription.paused",
    "subscription.resumed",
    "subscription.cancelled",
    "subscription.payment_succeeded",
    "subscription.payment_failed",
    "subscription.past_due",
)


def event_record(*, merchant_id, event_type: str, data: dict[str, Any]) -> Event:
    """Record an event inside the caller's transaction (call it where the state changes).

    ``data`` is the object exactly as the API returns it.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction that changes the state")
    return Event.objects.create(merchant_id=merchant_id, type=event_type, data=data)
