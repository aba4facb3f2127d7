"""Celery tasks of the webhooks app (the outbox's deliveries). Each takes ids, re-reads the rows and is
safe to run twice. The Authorize.Net inbound tasks live in ``payments.inbound.tasks`` (their names
still start with ``webhooks.tasks.``)."""

from __future__ import annotations

import os

from celery import shared_task
from django.conf import settings

from . import services


def delivery_queue() -> str | None:
    """The queue outbound deliveries go to: ``WEBHOOKS_DELIVERY_QUEUE`` (setting or environment), or
    None for Celery's default queue.

    Deliveries wait on merchants' servers (up to WEBHOOK_TIMEOUT_SECONDS), so in production they
    belong on their own queue served by a threads-pool worker, where a slow endpoint never holds up
    reconciliation or billing:
    ``WEBHOOKS_DELIVERY_QUEUE=webhooks celery -A config worker -Q webhooks --pool threads --concurrency 32``
    next to the default worker. Opt-in: with it unset every worker keeps serving deliveries.
    """
    return settings.WEBHOOKS_DELIVERY_QUEUE or os.environ.get("WEBHOOKS_DELIVERY_QUEUE") or None


# No queue of its own (WEBHOOKS_DELIVERY_QUEUE routes it, through CELERY_TASK_ROUTES).
@shared_task(name="webhooks.tasks.delivery_attempt", acks_late=True, ignore_result=True, queue=None)
def delivery_attempt(delivery_id: str) -> None:
    """One attempt of an outbound delivery (claimed atomically; a finished delivery is never re-sent)."""
    services.delivery_attempt_run(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.deliveries_retry_due", ignore_result=True)
def deliveries_retry_due() -> int:
    """Every minute (beat): send the deliveries whose next attempt is due. This is how retries happen
    when tasks run eagerly, and it rescues attempts whose worker died or whose message was lost."""
    due = services.deliveries_due()
    for delivery_id in due:
        delivery_attempt.delay(str(delivery_id))
    return len(due)
