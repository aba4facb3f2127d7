"""Celery tasks of the subscriptions app (scheduled by beat: ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from .services import subscription_billing_run, utc_today


@shared_task(name="subscriptions.tasks.bill_due_subscriptions")
def bill_due_subscriptions(today: str | None = None, batch_size: int = 500) -> dict:
    """Run the recurring-billing pass for ``today`` (ISO date, default the current UTC date).

    Safe to run twice or on two workers at once: each period is charged once (see ``billing``).
    """
    day = date.fromisoformat(today) if today else utc_today()
    return subscription_billing_run(today=day, batch_size=batch_size).as_dict()
