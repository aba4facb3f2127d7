"""Rendering a notification: the context its templates see and the subject, text and html they make."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from .. import formatting
from ..models import Notification, NotificationSettings

Channel = Notification.Channel


def display_context(notification: Notification, prefs: NotificationSettings) -> dict:
    ctx = dict(notification.context or {})
    ctx.update(
        {
            "merchant_name": prefs.sender_name or notification.merchant.name,
            "support_email": prefs.support_email or prefs.reply_to or "",
            "kind": notification.kind,
            "notification_id": notification.pk,
        }
    )
    return preview_context(ctx, prefs.timezone)


def preview_context(ctx: dict, tz: str = "") -> dict:
    """``ctx`` plus what the templates show: amounts, card, dates formatted (also the admin preview)."""
    ctx = dict(ctx)
    if ctx.get("amount") is not None and ctx.get("currency"):
        ctx["amount_display"] = formatting.money(ctx["amount"], ctx["currency"])
    if ctx.get("refund_amount") is not None:
        ctx["refund_amount_display"] = formatting.money(ctx["refund_amount"], ctx.get("currency", ""))
    if ctx.get("refunded_total") is not None:
        ctx["refunded_total_display"] = formatting.money(ctx["refunded_total"], ctx.get("currency", ""))
    ctx["card_display"] = formatting.card(ctx.get("card_brand"), ctx.get("card_last_four"))
    for key in ("paid_at", "refunded_at", "cancelled_at", "first_failed_at"):
        if ctx.get(key):
            ctx[f"{key}_display"] = formatting.when(ctx[key], tz)
    for key in ("next_billing_date", "charge_date"):
        if ctx.get(key):
            ctx[f"{key}_display"] = formatting.day(ctx[key])
    return ctx


def notification_render(*, kind: str, channel: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of a kind with ``context`` (html is empty for SMS)."""
    with translation.override(settings.LANGUAGE_CODE):
        if channel == Channel.SMS:
            text = render_to_string(f"notifications/{kind}.sms.txt", context).strip()
            return "", text, ""
        subject = " ".join(render_to_string(f"notifications/{kind}.subject.txt", context).split())
        text = render_to_string(f"notifications/{kind}.txt", context).strip() + "\n"
        html = render_to_string(f"notifications/{kind}.html", context)
    return subject, text, html
