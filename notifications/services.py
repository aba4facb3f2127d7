"""Writes for notifications: queueing them from domain events, sending them (with retries), resending,
the merchant's settings, and the scheduled kinds (renewal reminders, expiring cards, webhook alerts)."""

from __future__ import annotations

import logging
import random
import smtplib
import socket
import time
from datetime import date, timedelta
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.db.models import Case, Q, Value, When
from django.template.loader import render_to_string
from django.utils import timezone, translation

from core.tasks import enqueue_on_commit, task_send_later, tasks_run_eagerly

from . import formatting, sms
from .models import KIND_DEFAULTS, Kind, Notification, NotificationAttempt, NotificationSettings

logger = logging.getLogger("easypay.notifications")

# The task that sends one notification (notifications.tasks.notification_send), by name: tasks import
# services, never the other way round.
SEND_TASK = "notifications.tasks.notification_send"

Channel = Notification.Channel
Status = Notification.Status

SETTINGS_FIELDS = (
    *KIND_DEFAULTS,
    "renewal_reminder_days",
    "sms_enabled",
    "sender_name",
    "reply_to",
    "support_email",
    "alert_email",
    "timezone",
)


# --- settings -----------------------------------------------------------------------------------


def settings_for(*, merchant_id) -> NotificationSettings:
    """The merchant's settings, or the defaults (unsaved) when it never changed them."""
    found = NotificationSettings.objects.filter(merchant_id=merchant_id).first()
    return found or NotificationSettings(merchant_id=merchant_id)


def notification_settings_update(*, merchant, changes: dict[str, Any]) -> NotificationSettings:
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValueError(f"unknown settings {unknown}")
    with transaction.atomic():
        row, _ = NotificationSettings.objects.select_for_update().get_or_create(merchant=merchant)
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
    return row


# --- from domain events -------------------------------------------------------------------------


def notifications_for_event(*, event) -> list[Notification]:
    """Queue what ``event`` (just recorded, inside its transaction) tells the customer.

    Called by ``webhooks.services.event_record`` for every event (registered as its listener by
    ``NotificationsConfig.ready``). Each notification is a row written in this same transaction (a
    rolled-back change sends nothing) and sent by a task after commit, so neither the SMTP server nor
    the SMS provider is ever on the request's path.
    """
    builder = _EVENT_BUILDERS.get(event.type)
    if builder is None:
        return []
    planned = builder(event.data or {})
    if planned is None:
        return []
    kind, object_type, object_id, dedupe_key, context = planned
    email = (event.data or {}).get("customer_email") or ""
    phone = (event.data or {}).get("customer_phone") or ""
    if not email and not phone:
        return []  # nobody to tell: not even the settings are read
    prefs = settings_for(merchant_id=event.merchant_id)
    if not prefs.kind_enabled(kind):
        return []
    customer_id = (event.data or {}).get("customer_id") or ""
    made = []
    targets = [(Channel.EMAIL, email)]
    if prefs.sms_enabled:
        targets.append((Channel.SMS, phone))
    for channel, recipient in targets:
        if not recipient:
            continue
        row = _queue(
            merchant_id=event.merchant_id,
            kind=kind,
            channel=channel,
            recipient=recipient,
            customer_id=customer_id,
            object_type=object_type,
            object_id=object_id,
            event_id=event.id,
            dedupe_key=dedupe_key,
            context=context,
        )
        if row is not None:
            made.append(row)
    return made


def _payment_context(data: dict) -> dict:
    return {
        "payment_id": data.get("id"),
        "external_id": data.get("external_id"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
        "card_brand": data.get("card_brand") or "",
        "card_last_four": (data.get("card_last_four") or "")[-4:],
        "description": data.get("description") or "",
        "customer_name": data.get("customer_name") or "",
        "paid_at": data.get("processed_at") or data.get("created_at"),
        "subscription_id": data.get("subscription_id"),
    }


def _from_payment_captured(data: dict):
    if data.get("status") not in ("captured",) or not data.get("id"):
        return None
    context = _payment_context(data)
    if data.get("captured_amount"):
        context["amount"] = data["captured_amount"]
    return Kind.PAYMENT_RECEIPT, "payment", str(data["id"]), f"payment:{data['id']}", context


def _from_payment_refunded(data: dict):
    done = [r for r in data.get("refunds") or [] if r.get("status") == "succeeded"]
    if not done or not data.get("id"):
        return None
    refund = max(done, key=lambda r: (r.get("processed_at") or "", r.get("created_at") or ""))
    context = _payment_context(data)
    context.update(
        {
            "refund_id": refund.get("id"),
            "refund_amount": refund.get("amount"),
            "refund_reason": refund.get("reason") or "",
            "refunded_at": refund.get("processed_at") or refund.get("created_at"),
            "refunded_total": data.get("refunded_amount"),
            "fully_refunded": data.get("status") == "refunded",
        }
    )
    return Kind.REFUND_RECEIPT, "refund", str(refund.get("id")), f"refund:{refund.get('id')}", context


def _subscription_context(data: dict) -> dict:
    method = data.get("payment_method") or {}
    return {
        "subscription_id": data.get("id"),
        "external_id": data.get("external_id"),
        "plan_id": data.get("plan_id"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
        "billing_cycle": data.get("billing_cycle"),
        "card_brand": method.get("card_brand") or "",
        "card_last_four": (method.get("card_last_four") or "")[-4:],
        "next_billing_date": data.get("next_billing_date"),
        "failure_count": data.get("failure_count") or 0,
        "customer_name": data.get("customer_name") or "",
    }


def _from_subscription_payment_failed(data: dict):
    # The last failure cancels the subscription: the cancellation notice says it, not "we'll retry".
    if data.get("status") != "past_due" or not data.get("next_billing_date"):
        return None
    context = _subscription_context(data)
    key = f"subscription:{data['id']}:failed:{data.get('failure_count')}:{data.get('next_billing_date')}"
    return Kind.PAYMENT_FAILED, "subscription", str(data["id"]), key, context


def _from_subscription_cancelled(data: dict):
    # Only the cancellation the retries caused (a merchant's own cancel is the merchant's to tell).
    if data.get("status") != "cancelled" or not data.get("failure_count"):
        return None
    context = _subscription_context(data)
    context["cancelled_at"] = data.get("cancelled_at")
    return Kind.SUBSCRIPTION_CANCELLED, "subscription", str(data["id"]), f"subscription:{data['id']}:cancelled", context


_EVENT_BUILDERS = {
    "payment.captured": _from_payment_captured,
    "payment.refunded": _from_payment_refunded,
    "payment.partially_refunded": _from_payment_refunded,
    "subscription.payment_failed": _from_subscription_payment_failed,
    "subscription.cancelled": _from_subscription_cancelled,
}


def _queue(
    *,
    merchant_id,
    kind: str,
    channel: str,
    recipient: str,
    object_type: str,
    object_id: str,
    dedupe_key: str,
    context: dict,
    customer_id: str = "",
    event_id: str = "",
    resent_from: Notification | None = None,
) -> Notification | None:
    """Write one notification and enqueue its send on commit; None if it exists already (the
    constraint decides, inside a savepoint so the caller's transaction goes on)."""
    try:
        with transaction.atomic():
            row = Notification.objects.create(
                merchant_id=merchant_id,
                kind=kind,
                channel=channel,
                recipient=recipient[:254],
                customer_id=customer_id[:255],
                object_type=object_type,
                object_id=object_id[:64],
                event_id=event_id or "",
                dedupe_key=dedupe_key[:128],
                context=context,
                resent_from=resent_from,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    enqueue_on_commit(SEND_TASK, row.pk)
    return row


# --- rendering ----------------------------------------------------------------------------------


def _display_context(notification: Notification, prefs: NotificationSettings) -> dict:
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


# --- sending ------------------------------------------------------------------------------------


def _retry_delay(attempts: int) -> float | None:
    schedule = settings.NOTIFICATION_RETRY_SCHEDULE_SECONDS
    if attempts - 1 >= len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.9, 1.1)


def _lease_seconds() -> float:
    return float(settings.EMAIL_TIMEOUT or 10) * 3 + 30


class _SendFailure(Exception):
    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


def _classify_smtp(exc: BaseException) -> _SendFailure:
    """SMTP 4xx, refused connections and timeouts are temporary; a 5xx answer is permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{addr}: {code} {msg!r}" for addr, (code, msg) in exc.recipients.items())
        return _SendFailure(f"SMTP recipient refused: {detail}", temporary=not all(500 <= c < 600 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        message = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return _SendFailure(f"SMTP {code}: {message}", temporary=not (500 <= int(code or 0) < 600))
    if isinstance(exc, (smtplib.SMTPException, socket.timeout, TimeoutError, OSError)):
        return _SendFailure(f"SMTP unavailable: {type(exc).__name__}: {exc}", temporary=True)
    return _SendFailure(f"{type(exc).__name__}: {exc}", temporary=True)


def _from_address(display_name: str) -> str:
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((display_name, address or settings.DEFAULT_FROM_EMAIL))


def _send_email(notification: Notification, prefs: NotificationSettings, ctx: dict) -> str:
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message_id = make_msgid(domain=(address.rpartition("@")[2] or "easypay.local"))
    to_merchant = notification.kind == Kind.WEBHOOK_ENDPOINT_FAILING  # EasyPay writing to the merchant
    message = mail.EmailMultiAlternatives(
        subject=notification.subject,
        body=notification.body_text,
        from_email=_from_address("EasyPay" if to_merchant else ctx["merchant_name"]),
        to=[notification.recipient],
        reply_to=[prefs.reply_to] if prefs.reply_to and not to_merchant else None,
        headers={
            "Message-ID": message_id,
            "X-EasyPay-Notification-Id": notification.pk,
            "X-EasyPay-Notification-Kind": notification.kind,
        },
    )
    message.attach_alternative(notification.body_html, "text/html")
    try:
        connection = mail.get_connection(fail_silently=False)
        sent = connection.send_messages([message])
    except Exception as exc:
        raise _classify_smtp(exc) from None
    if not sent:
        raise _SendFailure("The mail backend accepted nothing.", temporary=True)
    return message_id


def _send_sms(notification: Notification) -> str:
    try:
        return sms.get_backend().send(to=notification.recipient, body=notification.body_text)
    except sms.SMSError as exc:
        raise _SendFailure(str(exc), temporary=exc.temporary) from None


def notification_send_run(*, notification_id) -> Notification | None:
    """Send one notification if it is due; safe to call any number of times, at once or again.

    The attempt is claimed by a conditional update on ``attempt_count`` that also pushes
    ``next_attempt_at`` out by a lease, so only one caller sends, and a worker that died mid-send is
    replaced by the sweep once the lease ends. A sent or failed notification is never sent again.
    """
    now = timezone.now()
    row = Notification.objects.select_related("merchant").filter(pk=notification_id).first()
    if row is None or row.status != Status.PENDING:
        return row
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return row
    attempt_number = row.attempt_count + 1
    claimed = (
        Notification.objects.filter(pk=row.pk, status=Status.PENDING, attempt_count=row.attempt_count)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempt_count=attempt_number, next_attempt_at=now + timedelta(seconds=_lease_seconds()), updated_at=now)
    )
    if not claimed:
        return Notification.objects.filter(pk=row.pk).first()

    prefs = settings_for(merchant_id=row.merchant_id)
    ctx = _display_context(row, prefs)
    if not row.body_text:
        row.subject, row.body_text, row.body_html = notification_render(kind=row.kind, channel=row.channel, context=ctx)
        Notification.objects.filter(pk=row.pk).update(
            subject=row.subject, body_text=row.body_text, body_html=row.body_html
        )
    started = time.monotonic()
    failure: _SendFailure | None = None
    provider_id = ""
    try:
        if row.channel == Channel.SMS:
            provider_id = _send_sms(row)
        else:
            provider_id = _send_email(row, prefs, ctx)
    except _SendFailure as exc:
        failure = exc
    latency_ms = int((time.monotonic() - started) * 1000)
    return _record_outcome(
        row=row, attempt_number=attempt_number, failure=failure, provider_id=provider_id, latency_ms=latency_ms
    )


def _record_outcome(
    *, row: Notification, attempt_number: int, failure: _SendFailure | None, provider_id: str, latency_ms: int
) -> Notification | None:
    done = timezone.now()
    NotificationAttempt.objects.create(
        notification=row,
        attempt_number=attempt_number,
        succeeded=failure is None,
        permanent=bool(failure and not failure.temporary),
        error=str(failure or "")[:2000],
        latency_ms=latency_ms,
    )
    mine = Notification.objects.filter(pk=row.pk, status=Status.PENDING, attempt_count=attempt_number)
    delay = None
    if failure is None:
        mine.update(
            status=Status.SENT,
            sent_at=done,
            next_attempt_at=None,
            last_error="",
            provider_message_id=provider_id[:255],
            updated_at=done,
        )
        outcome = "sent"
    else:
        delay = _retry_delay(attempt_number) if failure.temporary else None
        if delay is None:
            mine.update(status=Status.FAILED, next_attempt_at=None, last_error=str(failure)[:2000], updated_at=done)
            outcome = "failed"
        else:
            updated = mine.update(
                next_attempt_at=done + timedelta(seconds=delay), last_error=str(failure)[:2000], updated_at=done
            )
            outcome = "retrying"
            if updated:
                _schedule_retry(row.pk, delay)
    logger.info(
        "notification attempt",
        extra={"notification_id": row.pk, "kind": row.kind, "attempt": attempt_number, "outcome": outcome},
    )
    return Notification.objects.filter(pk=row.pk).first()


def _schedule_retry(notification_id: str, delay: float) -> None:
    """With a broker, a countdown task; eagerly (tests, `make run`) the every-minute sweep sends it
    (a countdown would run at once and recurse). Delays past the broker's visibility timeout are left
    to the sweep as well."""
    if tasks_run_eagerly():
        return
    if delay >= settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600):
        return
    try:
        task_send_later(SEND_TASK, notification_id, countdown=delay)
    except Exception as exc:  # the sweep picks it up
        logger.warning("could not schedule the retry of %s: %s", notification_id, exc)


def notifications_due(*, limit: int = 500) -> list[str]:
    """Pending notifications whose (next) attempt is due: retries, and sends whose task was lost."""
    now = timezone.now()
    return list(
        Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def notification_resend(*, notification: Notification) -> Notification:
    """Send the same message again to the same recipient, as a new notification linked to the first."""
    with transaction.atomic():
        count = Notification.objects.filter(resent_from=notification).count()
        row = None
        for n in range(count + 1, count + 50):
            row = _queue(
                merchant_id=notification.merchant_id,
                kind=notification.kind,
                channel=notification.channel,
                recipient=notification.recipient,
                customer_id=notification.customer_id,
                object_type=notification.object_type,
                object_id=notification.object_id,
                event_id=notification.event_id,
                dedupe_key=f"resend:{notification.pk}:{n}",
                context=notification.context,
                resent_from=notification,
            )
            if row is not None:
                break
    assert row is not None
    return row


# --- scheduled kinds ----------------------------------------------------------------------------


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
            context = _subscription_context(data)
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
        context = _subscription_context(data)
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
            if recipient and _queue(
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
        failed_count = EventDelivery.objects.filter(endpoint=endpoint, created_at__gte=since - window).exclude(
            status="succeeded"
        )
        first = failed_count.order_by("created_at").values_list("created_at", flat=True).first()
        context = {
            "endpoint_id": str(endpoint.pk),
            "endpoint_url": endpoint.url,
            "failed_deliveries": failed_count.count(),
            "first_failed_at": first.isoformat() if first else None,
            "hours": settings.NOTIFICATION_WEBHOOK_FAILING_HOURS,
        }
        with transaction.atomic():
            if _queue(
                merchant_id=endpoint.merchant_id,
                kind=Kind.WEBHOOK_ENDPOINT_FAILING,
                channel=Channel.EMAIL,
                recipient=recipient,
                object_type="webhook_endpoint",
                object_id=str(endpoint.pk),
                dedupe_key=f"endpoint:{endpoint.pk}:{now.date().isoformat()}",
                context=context,
            ):
                queued += 1
    return queued


# --- GDPR ---------------------------------------------------------------------------------------


def customer_notifications_export(*, merchant_id, customer_id: str) -> list[dict]:
    """What was sent to one of the merchant's customers (the GDPR export's ``notifications``)."""
    rows = Notification.objects.filter(merchant_id=merchant_id, customer_id=customer_id).order_by("created_at")
    return [
        {
            "id": n.pk,
            "merchant_id": str(n.merchant_id),
            "kind": n.kind,
            "channel": n.channel,
            "recipient": n.recipient,
            "object_type": n.object_type,
            "object_id": n.object_id,
            "status": n.status,
            "subject": n.subject,
            "sent_at": n.sent_at.isoformat() if n.sent_at else None,
            "created_at": n.created_at.isoformat(),
        }
        for n in rows
    ]


def customer_notifications_pseudonymize(*, merchant_id, customer_id: str, email: str) -> int:
    """Replace the customer's addresses (email with the erasure pseudonym, phone numbers with a blank
    marker) and drop the rendered bodies and their context (which hold the customer's name)."""
    rows = Notification.objects.filter(merchant_id=merchant_id, customer_id=customer_id)
    return rows.update(
        recipient=Case(When(channel=Channel.SMS, then=Value("erased")), default=Value(email)),
        body_text="",
        body_html="",
        context={},
        updated_at=timezone.now(),
    )
