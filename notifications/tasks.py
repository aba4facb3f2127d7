"""Celery tasks of the notifications app. Each takes ids, re-reads the rows and is safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="notifications.tasks.notification_send", acks_late=True, ignore_result=True)
def notification_send(notification_id: str) -> None:
    """One attempt at sending a notification (claimed atomically; a sent one is never sent again)."""
    services.notification_send_run(notification_id=notification_id)


@shared_task(name="notifications.tasks.notifications_send_due", ignore_result=True)
def notifications_send_due() -> int:
    """Every minute (beat): send what is due: retries, and sends whose task was lost or whose worker died."""
    due = services.notifications_due()
    for notification_id in due:
        notification_send.delay(notification_id)
    return len(due)


@shared_task(name="notifications.tasks.notifications_daily", ignore_result=True)
def notifications_daily() -> dict:
    """Daily (beat): renewal reminders and expiring-card notices (each once, by its constraint)."""
    today = timezone.now().date()
    return {
        "renewal_reminders": services.renewal_reminders_queue(today=today),
        "card_expiring": services.expiring_cards_queue(today=today),
    }


@shared_task(name="notifications.tasks.webhook_failure_alerts", ignore_result=True)
def webhook_failure_alerts() -> int:
    """Hourly (beat): tell merchants about endpoints whose deliveries have failed for a day."""
    return services.webhook_failure_alerts_queue()
