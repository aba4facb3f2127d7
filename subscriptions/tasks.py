"""Celery tasks of the subscriptions app (scheduled by beat: ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

import logging
from datetime import date

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from .services import subscription_billing_run, utc_today

logger = logging.getLogger("easypay.subscriptions.tasks")

# A pass over a large book can outlast the project's default task limits; when it does it stops
# cleanly (claims not yet sent are given back) and queues its own continuation for the same day.
BILLING_SOFT_TIME_LIMIT = 50 * 60
BILLING_TIME_LIMIT = 55 * 60


@shared_task(
    name="subscriptions.tasks.bill_due_subscriptions",
    soft_time_limit=BILLING_SOFT_TIME_LIMIT,
    time_limit=BILLING_TIME_LIMIT,
)
def bill_due_subscriptions(today: str | None = None, batch_size: int = 500) -> dict:
    """Run the recurring-billing pass for ``today`` (ISO date, default the current UTC date).

    Safe to run twice or on two workers at once: each period is charged once (see ``billing``).
    """
    day = date.fromisoformat(today) if today else utc_today()
    try:
        return subscription_billing_run(today=day, batch_size=batch_size).as_dict()
    except SoftTimeLimitExceeded:
        logger.warning("subscription billing hit its time limit; continuing in a new task", extra={"date": str(day)})
        bill_due_subscriptions.delay(day.isoformat(), batch_size)
        return {"date": day.isoformat(), "continued": True}
