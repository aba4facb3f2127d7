"""Reads for webhooks, always scoped to the calling merchant."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

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
