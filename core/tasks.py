"""Enqueueing Celery tasks after commit, without ever failing the request that already moved money."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

logger = logging.getLogger("easypay.tasks")

ENQUEUE_FAILURES = Counter(
    "easypay_task_enqueue_failures_total", "Tasks that could not be sent to the broker", ["task"]
)


def enqueue_on_commit(task, *args: str) -> None:
    """Send ``task(*args)`` once the current transaction commits.

    The work a task does is always recorded in committed rows first (an outbox), and a beat sweep
    picks up rows whose task never ran. So when the broker is down, publishing is allowed to fail:
    it is logged and counted, and the caller, whose money movement is already committed, still
    gets its normal answer. In eager mode (no broker) the task runs inline and its errors surface.
    """

    def send() -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            task.delay(*args)
            return
        try:
            task.delay(*args)
        except Exception as exc:
            ENQUEUE_FAILURES.labels(task=task.name).inc()
            logger.warning("could not enqueue %s%s: %s; the beat sweep will pick it up", task.name, args, exc)

    transaction.on_commit(send)
