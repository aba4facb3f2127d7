"""Reads for webhooks, scoped to the calling merchant (the back office's health reads are global)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from .models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint


def endpoint_list(*, merchant_id) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.live().filter(merchant_id=merchant_id)


def _delivery_exists(status: str) -> Exists:
    return Exists(EventDelivery.objects.filter(event=OuterRef("pk"), status=status))


def event_list(*, merchant_id) -> QuerySet[Event]:
    """The merchant's events with ``has_failed/has_pending/has_succeeded`` annotations, from which
    ``delivery_status`` is derived: failed if any delivery failed for good, else pending if any is
    still being tried, else succeeded if any was delivered, else null (no endpoint was subscribed)."""
    return (
        Event.objects.filter(merchant_id=merchant_id)
        .annotate(
            has_failed=_delivery_exists(EventDelivery.Status.FAILED),
            has_pending=_delivery_exists(EventDelivery.Status.PENDING),
            has_succeeded=_delivery_exists(EventDelivery.Status.SUCCEEDED),
        )
        .prefetch_related(Prefetch("deliveries", queryset=EventDelivery.objects.order_by("created_at", "id")))
    )


def delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[EventDelivery]:
    return (
        EventDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("attempt_number")))
    )


def overdue_margin() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_OVERDUE_MARGIN_SECONDS)


def deliveries_overdue(*, now: datetime | None = None) -> QuerySet[EventDelivery]:
    """Pending deliveries whose next attempt should have happened more than
    ``WEBHOOK_OVERDUE_MARGIN_SECONDS`` ago: nothing is sending them (the scheduler or the workers are
    down, or a message was lost). A pending delivery without a next attempt time is stuck as well
    once it has not moved for that long. All merchants: for the back office."""
    cutoff = (now or timezone.now()) - overdue_margin()
    return EventDelivery.objects.filter(
        Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, updated_at__lt=cutoff),
        status=EventDelivery.Status.PENDING,
    )


def deliveries_failed() -> QuerySet[EventDelivery]:
    """Deliveries that used up their retries (all merchants)."""
    return EventDelivery.objects.filter(status=EventDelivery.Status.FAILED)


def delivery_is_overdue(delivery: EventDelivery, *, now: datetime | None = None) -> bool:
    """The row-level form of :func:`deliveries_overdue` (for a list already loaded)."""
    if delivery.status != EventDelivery.Status.PENDING:
        return False
    cutoff = (now or timezone.now()) - overdue_margin()
    if delivery.next_attempt_at is None:
        return delivery.updated_at is not None and delivery.updated_at < cutoff
    return delivery.next_attempt_at < cutoff
