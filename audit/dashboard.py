"""Figures of the back-office dashboard, and its bar charts as server-rendered SVG (no JS, no CDN)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from payments.models import Payment, Refund
from subscriptions.models import Subscription
from webhooks.selectors import deliveries_failed, deliveries_overdue, overdue_margin

APPROVED = ("authorized", "captured", "partially_refunded", "refunded", "voided")
REJECTED = ("declined", "failed")
SETTLED_VOLUME = ("captured", "partially_refunded", "refunded")


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def bar_chart(items: list[tuple[str, float]], *, width: int = 520, bar_height: int = 22, unit: str = "") -> SafeString:
    """Horizontal bars, one per (label, value), as an inline SVG string."""
    if not items:
        return mark_safe("<p>No data yet.</p>")
    label_w, gap = 150, 6
    top = max(value for _, value in items) or 1
    height = len(items) * (bar_height + gap) + gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="ep-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    usable = width - label_w - 70
    for index, (label, value) in enumerate(items):
        y = gap + index * (bar_height + gap)
        w = max(int(usable * (value / top)), 1 if value else 0)
        shown = f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_height * 0.7:.0f}" text-anchor="end" font-size="12">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_height}" fill="#417690" rx="2">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
            f'<text x="{label_w + w + 6}" y="{y + bar_height * 0.7:.0f}" font-size="12">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every label and value is escaped above)


def dashboard_context(*, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    today = timezone.localdate(now)
    start = _day_start(today)
    payments_today = Payment.objects.filter(created_at__gte=start)

    by_status = {row["status"]: row["n"] for row in payments_today.values("status").annotate(n=Count("id"))}
    count_today = sum(by_status.values())
    approved = sum(by_status.get(s, 0) for s in APPROVED)
    decided = approved + sum(by_status.get(s, 0) for s in REJECTED)
    approval_rate = round(100 * approved / decided, 1) if decided else None

    volume = [
        {"currency": row["currency"], "amount": row["total"] or Decimal("0"), "count": row["n"]}
        for row in payments_today.filter(status__in=SETTLED_VOLUME)
        .values("currency")
        .annotate(total=Sum("captured_amount"), n=Count("id"))
        .order_by("currency")
    ]
    refunds_today = [
        {"currency": row["payment__currency"], "amount": row["total"] or Decimal("0"), "count": row["n"]}
        for row in Refund.objects.filter(created_at__gte=start, status=Refund.Status.SUCCEEDED)
        .values("payment__currency")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("payment__currency")
    ]
    failed_deliveries = deliveries_failed()
    overdue = deliveries_overdue(now=now)
    overdue_count = overdue.count()
    oldest_due = overdue.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    subs = Subscription.objects.aggregate(
        due_today=Count(
            "id",
            filter=Q(
                status__in=[Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE], next_billing_date__lte=today
            ),
        ),
        past_due=Count("id", filter=Q(status=Subscription.Status.PAST_DUE)),
        active=Count("id", filter=Q(status=Subscription.Status.ACTIVE)),
    )

    week_start = _day_start(today - timedelta(days=6))
    daily = {
        row["day"]: row["n"]
        for row in Payment.objects.filter(created_at__gte=week_start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
    }
    week = [
        ((today - timedelta(days=offset)).strftime("%a %d %b"), daily.get(today - timedelta(days=offset), 0))
        for offset in range(6, -1, -1)
    ]
    status_items = [(status, by_status[status]) for status in Payment.Status.values if by_status.get(status)]
    context = {
        "today": today,
        "count_today": count_today,
        "by_status": status_items,
        "approval_rate": approval_rate,
        "volume": volume,
        "refunds_today": refunds_today,
        "refund_count_today": sum(r["count"] for r in refunds_today),
        "failed_deliveries": failed_deliveries.count(),
        "failed_deliveries_24h": failed_deliveries.filter(updated_at__gte=now - timedelta(hours=24)).count(),
        # Pending past their next attempt time by more than the margin: retries are not happening.
        "overdue_deliveries": overdue_count,
        "overdue_oldest_since": oldest_due if overdue_count else None,
        "overdue_margin_minutes": int(overdue_margin().total_seconds() // 60),
        "subscriptions_due_today": subs["due_today"],
        "subscriptions_past_due": subs["past_due"],
        "subscriptions_active": subs["active"],
        "status_chart": bar_chart(status_items),
        "week_chart": bar_chart(week),
    }
    context["deliveries_needing_attention"] = context["failed_deliveries"] + overdue_count
    return context
