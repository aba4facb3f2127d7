"""Back office for webhooks: inbound notifications (read-only, replay), merchant endpoints (secret never
shown), events, deliveries and attempts (redeliver). Every action calls ``webhooks.services``."""

from __future__ import annotations

from django.contrib import admin, messages

from audit.adminlib import (
    ReadOnlyModelAdmin,
    ReadOnlyTabularInline,
    audit_admin_action,
    confirmation_page,
)
from core.exceptions import EasyPayError

from .models import DeliveryAttempt, Event, EventDelivery, InboundEvent, WebhookEndpoint
from .services import delivery_redeliver, event_redeliver, inbound_event_replay


def _replay_permission(request) -> bool:
    return request.user.has_perm("audit.replay_webhook")


def _confirm_rows(objects, columns):
    return [{"pk": o.pk, "label": str(o), "columns": [(name, getter(o)) for name, getter in columns]} for o in objects]


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyModelAdmin):
    list_display = ("event_id", "event_type", "status", "signature_valid", "merchant", "retry_count", "created_at")
    list_filter = ("status", "signature_valid", "event_type", "source")
    search_fields = ("=event_id", "event_type")
    list_select_related = ("merchant",)
    # The signature header is a MAC of the body, not a secret, but it is noise here.
    exclude = ("signature",)
    actions = ("replay_events",)

    def has_replay_permission(self, request):
        return _replay_permission(request)

    @admin.action(description="Replay selected notifications", permissions=["replay"])
    def replay_events(self, request, queryset):
        events = list(queryset)
        if request.POST.get("post") != "yes":
            rows = _confirm_rows(events, [("Status", lambda e: e.status), ("Valid", lambda e: e.signature_valid)])
            return confirmation_page(
                self, request, queryset, action="replay_events", title="Replay notifications", rows=rows
            )
        for event in events:
            try:
                updated = inbound_event_replay(event=event)
            except EasyPayError as exc:
                audit_admin_action(request, event, "replay", result={"error": exc.code}, status_code=exc.status_code)
                self.message_user(request, f"{event.event_id}: {exc.message}", messages.ERROR)
                continue
            audit_admin_action(request, event, "replay", result={"status": updated.status})
            self.message_user(request, f"{event.event_id}: {updated.status}.", messages.SUCCESS)
        return None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyModelAdmin):
    list_display = ("url", "merchant", "is_active", "events", "created_at", "deleted_at")
    list_filter = ("is_active",)
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
    list_display = ("id", "type", "merchant", "created_at")
    list_filter = ("type", "created_at")
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


@admin.register(EventDelivery)
class EventDeliveryAdmin(_RedeliverMixin, ReadOnlyModelAdmin):
    list_display = ("event", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("=event__id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver_deliveries",)

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver"])
    def redeliver_deliveries(self, request, queryset):
        deliveries = list(queryset.select_related("endpoint"))
        if request.POST.get("post") != "yes":
            rows = _confirm_rows(deliveries, [("Status", lambda d: d.status), ("Attempts", lambda d: d.attempt_count)])
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
    list_display = ("delivery", "attempt_number", "status_code", "latency_ms", "succeeded", "created_at")
    list_filter = ("succeeded",)
    raw_id_fields = ("delivery",)
