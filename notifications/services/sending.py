"""Sending a notification: the claim with a lease, one attempt by email or SMS, the outcome recorded,
and the retry schedule (a countdown task, or the every-minute sweep of what is due)."""

from __future__ import annotations

import logging
import random
import smtplib
import socket
import time
from datetime import timedelta
from email.utils import formataddr, make_msgid, parseaddr

from django.conf import settings
from django.core import mail
from django.db.models import Q
from django.utils import timezone

from core.tasks import task_send_later, tasks_run_eagerly

from .. import sms
from ..models import Kind, Notification, NotificationAttempt, NotificationSettings
from .preferences import settings_for
from .queueing import SEND_TASK
from .rendering import display_context, notification_render

logger = logging.getLogger("easypay.notifications")

Channel = Notification.Channel
Status = Notification.Status


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
    ctx = display_context(row, prefs)
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
