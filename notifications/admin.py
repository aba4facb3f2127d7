"""Back office for notifications: the log (with attempts and a resend action), each merchant's
settings, and a preview of every template with sample data. Actions call ``notifications.services``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape

from core.adminlib import ReadOnlyModelAdmin, ReadOnlyTabularInline, audit_admin_action, confirmation_page

from . import services
from .models import Kind, Notification, NotificationAttempt, NotificationSettings
from .samples import SAMPLES


class NotificationAttemptInline(ReadOnlyTabularInline):
    model = NotificationAttempt
    fields = ("attempt_number", "succeeded", "permanent", "latency_ms", "error", "created_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "kind", "channel", "recipient", "status", "attempt_count", "merchant", "created_at")
    list_filter = ("status", "kind", "channel", "created_at")
    search_fields = ("=id", "recipient", "=object_id", "=event_id", "=customer_id")
    list_select_related = ("merchant",)
    exclude = ("context",)
    inlines = (NotificationAttemptInline,)
    actions = ("resend_notifications",)
    change_list_template = "admin/notifications/notification/change_list.html"

    def has_resend_permission(self, request):
        return request.user.has_perm("audit.replay_webhook")

    @admin.action(description="Resend selected notifications", permissions=["resend"])
    def resend_notifications(self, request, queryset):
        rows = list(queryset)
        if request.POST.get("post") != "yes":
            confirm = [
                {"pk": n.pk, "label": str(n), "columns": [("Kind", n.kind), ("To", n.recipient), ("Status", n.status)]}
                for n in rows
            ]
            return confirmation_page(
                self, request, queryset, action="resend_notifications", title="Resend notifications", rows=confirm
            )
        for notification in rows:
            new = services.notification_resend(notification=notification)
            audit_admin_action(request, notification, "resend", result={"notification_id": new.pk})
            self.message_user(request, f"{notification.pk}: resent as {new.pk}.", messages.SUCCESS)
        return None

    def get_urls(self):
        extra = [
            path("preview/", self.admin_site.admin_view(self.preview_index), name="notifications_preview"),
            path(
                "preview/<str:kind>/<str:fmt>/",
                self.admin_site.admin_view(self.preview_kind),
                name="notifications_preview_kind",
            ),
        ]
        return extra + super().get_urls()

    def preview_index(self, request):
        kinds = [
            {
                "kind": kind,
                "label": label,
                "links": [
                    (fmt, reverse("admin:notifications_preview_kind", args=[kind, fmt]))
                    for fmt in ("html", "text", "sms")
                ],
            }
            for kind, label in Kind.choices
        ]
        context = {**self.admin_site.each_context(request), "title": "Notification templates", "kinds": kinds}
        return TemplateResponse(request, "admin/notifications/preview.html", context)

    def preview_kind(self, request, kind: str, fmt: str):
        if kind not in SAMPLES or fmt not in ("html", "text", "sms"):
            raise Http404("No such template.")
        context = {
            **SAMPLES[kind],
            "merchant_name": "Acme Coffee",
            "support_email": "help@acme.example",
            "kind": kind,
            "notification_id": "ntf_sample",
        }
        rendered = services.preview_context(context)
        channel = Notification.Channel.SMS if fmt == "sms" else Notification.Channel.EMAIL
        subject, text, html = services.notification_render(kind=kind, channel=channel, context=rendered)
        if fmt == "html":
            return HttpResponse(html)
        body = text if fmt == "sms" else f"Subject: {subject}\n\n{text}"
        return HttpResponse(f"<pre>{escape(body)}</pre>")


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(ReadOnlyModelAdmin):
    list_display = ("merchant", "payment_receipt", "refund_receipt", "payment_failed", "sms_enabled", "sender_name")
    search_fields = ("=merchant__name",)
    list_select_related = ("merchant",)
