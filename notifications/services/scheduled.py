"""The scheduled kinds (beat): renewal reminders, expiring cards, and alerts about failing webhook
endpoints."""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Kind, Notification, NotificationSettings
from .events import subscription_context
from .preferences import settings_for
from .queueing import notification_queue

Channel = Notification.Channel

# How long after one alert about a failing endpoint the next may go: a day, less half an hour so that
# the hourly run a day later is not held back by a few seconds of beat jitter.
ALERT_AGAIN_AFTER = timedelta(hours=23, minutes=30)


def renewal_reminders_queue(*, today: date) -> int:
    """Remind customers of merchants that turned reminders on, N days before the next charge."""
    from subscriptions.models import Subscription
    from subscriptions.payloads import subscription_payload as subscription_data

    queued = 0
    for prefs in NotificationSettings.objects.filter(renewal_reminder=True):
        charge_date = today + timedelta(days=prefs.renewal_reminder_days)
        subs = Subscription.objects.filter(
            merchant_id=prefs.merchant_id, status=Subscription.Status.ACTIVE, next_billing_date=charge_date
        ).exclude(customer_email="")
        for sub in subs.iterator():
            data = subscription_data(sub)
            context = subscription_context(data)
            context["charge_date"] = charge_date.isoformat()
            queued += _queue_for_customer(
                prefs=prefs,
                data=data,
                kind=Kind.RENEWAL_REMINDER,
                object_type="subscription",
                object_id=str(sub.pk),
                dedupe_key=f"subscription:{sub.pk}:renewal:{charge_date.isoformat()}",
                context=context,
            )
    return queued


def expiring_cards_queue(*, today: date) -> int:
    """Warn the customer of an active subscription whose stored card expires before it is next charged
    (or within NOTIFICATION_CARD_EXPIRING_DAYS): once per card expiry."""
    from subscriptions.models import Subscription
    from subscriptions.payloads import subscription_payload as subscription_data

    horizon = today + timedelta(days=settings.NOTIFICATION_CARD_EXPIRING_DAYS)
    queued = 0
    subs = Subscription.objects.filter(status=Subscription.Status.ACTIVE).exclude(customer_email="")
    for sub in subs.filter(payment_method__has_key="card_expiry").iterator():
        expiry = str((sub.payment_method or {}).get("card_expiry") or "")
        try:
            year, month = (int(part) for part in expiry.split("-")[:2])
        except ValueError:
            continue
        last_day = (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)
        if not (today <= last_day <= horizon):
            continue
        prefs = settings_for(merchant_id=sub.merchant_id)
        if not prefs.card_expiring:
            continue
        data = subscription_data(sub)
        context = subscription_context(data)
        context["card_expiry"] = f"{month:02d}/{year}"
        queued += _queue_for_customer(
            prefs=prefs,
            data=data,
            kind=Kind.CARD_EXPIRING,
            object_type="subscription",
            object_id=str(sub.pk),
            dedupe_key=f"subscription:{sub.pk}:card_expiring:{expiry}",
            context=context,
        )
    return queued


def _queue_for_customer(*, prefs, data: dict, kind, object_type, object_id, dedupe_key, context) -> int:
    queued = 0
    targets = [(Channel.EMAIL, data.get("customer_email") or "")]
    if prefs.sms_enabled:
        targets.append((Channel.SMS, data.get("customer_phone") or ""))
    with transaction.atomic():
        for channel, recipient in targets:
            if recipient and notification_queue(
                merchant_id=prefs.merchant_id,
                kind=kind,
                channel=channel,
                recipient=recipient,
                customer_id=data.get("customer_id") or "",
                object_type=object_type,
                object_id=object_id,
                dedupe_key=dedupe_key,
                context=context,
            ):
                queued += 1
    return queued


def webhook_failure_alerts_queue(*, now=None) -> int:
    """Alert a merchant (its alert address, else its own email) about each active endpoint whose
    deliveries have failed for NOTIFICATION_WEBHOOK_FAILING_HOURS with none succeeding: once a day."""
    from accounts.models import Merchant
    from webhooks.models import EventDelivery, WebhookEndpoint

    now = now or timezone.now()
    window = timedelta(hours=settings.NOTIFICATION_WEBHOOK_FAILING_HOURS)
    since = now - window
    queued = 0
    failing = (
        EventDelivery.objects.filter(created_at__lte=since, attempt_count__gt=0)
        .filter(Q(status=EventDelivery.Status.FAILED) | Q(status=EventDelivery.Status.PENDING))
        .filter(endpoint__is_active=True, endpoint__deleted_at__isnull=True)
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    for endpoint in WebhookEndpoint.objects.filter(pk__in=list(failing)).select_related("merchant"):
        if EventDelivery.objects.filter(endpoint=endpoint, status="succeeded", completed_at__gte=since).exists():
            continue
        prefs = settings_for(merchant_id=endpoint.merchant_id)
        merchant: Merchant = endpoint.merchant
        recipient = prefs.alert_email or merchant.email
        if not prefs.webhook_endpoint_failing or not recipient:
            continue
        with transaction.atomic():
            # Once a day is a rolling day, not a calendar date: the job runs hourly, and a key on the
            # date alone alerted at 23:40 and again at 00:40. The lock on the endpoint makes two runs
            # at once (a beat restarted mid-run) decide one after the other; an endpoint alerted about
            # lately costs this one query, not the queries of the alert's text.
            WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
            if _endpoint_alerted_since(endpoint, since=now - ALERT_AGAIN_AFTER):
                continue
            if notification_queue(
                merchant_id=endpoint.merchant_id,
                kind=Kind.WEBHOOK_ENDPOINT_FAILING,
                channel=Channel.EMAIL,
                recipient=recipient,
                object_type="webhook_endpoint",
                object_id=str(endpoint.pk),
                dedupe_key=f"endpoint:{endpoint.pk}:{now.date().isoformat()}",
                context=_endpoint_failing_context(endpoint, since=since - window),
            ):
                queued += 1
    return queued


def _endpoint_alerted_since(endpoint, *, since) -> bool:
    """Whether the merchant was alerted about ``endpoint`` after ``since`` (a resend does not count)."""
    return Notification.objects.filter(
        merchant_id=endpoint.merchant_id,
        kind=Kind.WEBHOOK_ENDPOINT_FAILING,
        object_type="webhook_endpoint",
        object_id=str(endpoint.pk),
        resent_from__isnull=True,
        created_at__gt=since,
    ).exists()


def _endpoint_failing_context(endpoint, *, since) -> dict:
    """What the alert tells: the endpoint, its deliveries not succeeded since ``since`` and the first."""
    from webhooks.models import EventDelivery

    failed = EventDelivery.objects.filter(endpoint=endpoint, created_at__gte=since).exclude(status="succeeded")
    first = failed.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "endpoint_id": str(endpoint.pk),
        "endpoint_url": endpoint.url,
        "failed_deliveries": failed.count(),
        "first_failed_at": first.isoformat() if first else None,
        "hours": settings.NOTIFICATION_WEBHOOK_FAILING_HOURS,
    }
