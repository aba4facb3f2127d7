"""Back office for Authorize.Net notifications (``webhooks.InboundEvent``, listed under Webhooks):
read-only, with a replay action that calls ``payments.inbound.services``."""

from __future__ import annotations

from django.contrib import admin, messages

from core.adminlib import (
    ReadOnlyModelAdmin,
    audit_admin_action,
    confirmation_page,
    status_badge,
    status_display,
    truncated_display,
)
from core.exceptions import EasyPayError
from webhooks.admin import _confirm_rows, _replay_permission
from webhooks.models import InboundEvent

from .services import inbound_event_replay


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "event_id_short",
        "event_type_short",
        "status_label",
        "signature_valid",
        "merchant_short",
        "retry_count",
        "created_at",
    )
    list_filter = ("status", "signature_valid", "event_type", "source")
    event_id_short = truncated_display("event_id", description="event id", size="m")
    event_type_short = truncated_display("event_type", description="event type", size="l")
    status_label = status_display()
    merchant_short = truncated_display("merchant__name", description="merchant", ordering="merchant__name")
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
            rows = _confirm_rows(
                events, [("Status", lambda e: status_badge(e.status)), ("Valid", lambda e: e.signature_valid)]
            )
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
