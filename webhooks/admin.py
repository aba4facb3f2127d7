"""Back office for webhooks: merchant endpoints (secret never shown), events, deliveries and attempts
(redeliver). Every action calls ``webhooks.services``. Inbound notifications (``InboundEvent``: read-only,
replay) are registered by ``payments.inbound.admin``, next to the code that processes them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from core.adminlib import (
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    audit_admin_action,
    confirmation_page,
    status_badge,
    truncated_display,
)

from .models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint
from .selectors import deliveries_failed, deliveries_overdue, delivery_is_overdue
from .services import delivery_redeliver, event_redeliver


def _replay_permission(request) -> bool:
    return request.user.has_perm("audit.replay_webhook")


def _confirm_rows(objects, columns):
    return [{"pk": o.pk, "label": str(o), "columns": [(name, getter(o)) for name, getter in columns]} for o in objects]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyModelAdmin):
    list_display = ("url_short", "merchant_short", "is_active", "events_short", "created_at", "deleted_at")
    list_filter = ("is_active",)
    url_short = truncated_display("url", description="URL", size="l")
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name")
    events_short = truncated_display(lambda e: ", ".join(e.events or []), description="events", size="m")
    search_fields = ("url", "=merchant__name")
    list_select_related = ("merchant",)
    # Signing secrets (current and previous) are never shown.
    exclude = ("secret", "previous_secret")


class DeliveryAttemptInline(ReadOnlyTabularInline):
    model = DeliveryAttempt
    fields = ("attempt_number", "status_code", "latency_ms", "succeeded", "error", "created_at")
    readonly_fields = fields
    show_change_link = False


class _RedeliverMixin:
    def has_redeliver_permission(self, request):
        return _replay_permission(request)


@admin.register(Event)
class EventAdmin(_RedeliverMixin, ReadOnlyModelAdmin):
    list_display = ("id", "type", "merchant_short", "created_at")
    list_filter = ("type", "created_at")
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name")
    search_fields = ("=id",)
    list_select_related = ("merchant",)
    actions = ("redeliver_events",)

    @admin.action(description="Redeliver selected events to their endpoints", permissions=["redeliver"])
    def redeliver_events(self, request, queryset):
        events = list(queryset)
        if request.POST.get("post") != "yes":
            rows = _confirm_rows(events, [("Type", lambda e: e.type), ("Merchant", lambda e: e.merchant_id)])
            return confirmation_page(
                self, request, queryset, action="redeliver_events", title="Redeliver events", rows=rows
            )
        for event in events:
            deliveries = event_redeliver(event=event)
            audit_admin_action(request, event, "redeliver", result={"deliveries": [str(d.pk) for d in deliveries]})
            self.message_user(request, f"{event.id}: {len(deliveries)} delivery(ies) scheduled.", messages.SUCCESS)
        return None


class AttentionFilter(admin.SimpleListFilter):
    """What the dashboard's "needing attention" card links to: overdue (stuck) and failed deliveries."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue (stuck)"), ("failed", "Failed")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.filter(pk__in=deliveries_overdue().values("pk"))
        if self.value() == "failed":
            return queryset.filter(pk__in=deliveries_failed().values("pk"))
        return queryset


@admin.register(EventDelivery)
class EventDeliveryAdmin(_RedeliverMixin, ReadOnlyModelAdmin):
    list_display = (
        "event_short",
        "endpoint_short",
        "status_label",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = (AttentionFilter, "status", "created_at")
    event_short = truncated_display("event_id", description="event", ordering="event_id", size="m")
    endpoint_short = truncated_display("endpoint__url", description="endpoint", ordering="endpoint__url", size="m")

    @staticmethod
    @admin.display(description="status", ordering="status")
    def status_label(obj):
        # Pending past its retry time by more than the margin: nothing is sending it (see the dashboard).
        if delivery_is_overdue(obj):
            return format_html('{}<span class="ep-tag ep-tag--alert">overdue</span>', status_badge(obj.status))
        return status_badge(obj.status)

    search_fields = ("=event__id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver_deliveries",)

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver"])
    def redeliver_deliveries(self, request, queryset):
        deliveries = list(queryset.select_related("endpoint"))
        if request.POST.get("post") != "yes":
            rows = _confirm_rows(
                deliveries, [("Status", lambda d: status_badge(d.status)), ("Attempts", lambda d: d.attempt_count)]
            )
            return confirmation_page(
                self, request, queryset, action="redeliver_deliveries", title="Redeliver deliveries", rows=rows
            )
        for delivery in deliveries:
            updated = delivery_redeliver(delivery=delivery)
            audit_admin_action(request, delivery, "redeliver", result={"status": updated.status})
            self.message_user(request, f"{delivery.pk}: redelivery scheduled.", messages.SUCCESS)
        return None


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyModelAdmin):
    list_display = ("delivery_short", "attempt_number", "status_code", "latency_ms", "succeeded", "created_at")
    delivery_short = truncated_display(str, description="delivery", ordering="delivery_id", size="l")
    list_filter = ("succeeded",)
    raw_id_fields = ("delivery",)
