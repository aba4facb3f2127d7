"""Celery tasks of the Authorize.Net inbound path. Each takes ids, re-reads the rows and is safe to
run twice. Their names are the ones they had in ``webhooks.tasks``: the beat schedule, queued
messages and django-celery-beat rows know them by those names."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="webhooks.tasks.inbound_event_process", acks_late=True, ignore_result=True)
def inbound_event_process(event_id: str) -> None:
    """Apply one stored Authorize.Net notification (refresh the payment from the processor)."""
    services.inbound_event_process(event_id=event_id)


@shared_task(name="webhooks.tasks.inbound_events_retry_due", ignore_result=True)
def inbound_events_retry_due() -> int:
    """Every minute (beat): process notifications whose retry is due or whose worker died."""
    due = services.inbound_events_due()
    for event_id in due:
        inbound_event_process.delay(str(event_id))
    return len(due)


@shared_task(name="webhooks.tasks.inbound_events_purge", ignore_result=True)
def inbound_events_purge() -> int:
    """Daily (beat): drop the forensic rows of rejected notifications past their retention."""
    return services.inbound_events_purge()
