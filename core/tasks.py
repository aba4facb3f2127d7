"""Enqueueing Celery tasks after commit, without ever failing the request that already moved money.

Services name the task they enqueue (``"webhooks.tasks.delivery_attempt"``) instead of importing the
module that defines it: tasks import services, never the other way round (HackSoft's styleguide).
The name is looked up in the Celery app's registry when the message is sent, so the task's own options
(queue, acks_late) still apply and eager mode (tests, ``make run`` without a broker) still runs it inline.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading

from celery import current_app
from django.apps import apps as django_apps
from django.conf import settings
from django.db import transaction
from prometheus_client import Counter

logger = logging.getLogger("easypay.tasks")

ENQUEUE_FAILURES = Counter(
    "easypay_task_enqueue_failures_total", "Tasks that could not be sent to the broker", ["task"]
)


_import_lock = threading.Lock()


def task_named(name: str):
    """The registered Celery task called ``name``.

    A web process imports task modules only when something needs them: on a miss, every installed
    app's ``tasks`` module is imported (what the worker's autodiscovery loads; importing a module
    registers its tasks), then the name is looked up again. One thread at a time does it: requests
    served by threads may all miss at once. Not Celery's ``loader.import_default_modules()``: that
    is the worker's start-up (its Django fixup runs the system checks) and must not run in a request.
    An unknown name is a programming error and raises ``KeyError``.
    """
    tasks = current_app.tasks
    if name not in tasks:
        with _import_lock:
            if name not in tasks:
                for app_config in django_apps.get_app_configs():
                    module = f"{app_config.name}.tasks"
                    if importlib.util.find_spec(module) is not None:
                        importlib.import_module(module)
    return tasks[name]


def tasks_run_eagerly() -> bool:
    """Whether tasks run inline (``task_always_eager``: tests, ``make run`` without Redis)."""
    return bool(current_app.conf.task_always_eager)


def enqueue_on_commit(task, *args: str) -> None:
    """Send ``task(*args)`` once the current transaction commits; ``task`` is a task or its name.

    The work a task does is always recorded in committed rows first (an outbox), and a beat sweep
    picks up rows whose task never ran. So when the broker is down, publishing is allowed to fail:
    it is logged and counted, and the caller, whose money movement is already committed, still
    gets its normal answer. In eager mode (no broker) the task runs inline and its errors surface.
    """

    def send() -> None:
        target = task_named(task) if isinstance(task, str) else task
        if settings.CELERY_TASK_ALWAYS_EAGER:
            target.delay(*args)
            return
        try:
            target.delay(*args)
        except Exception as exc:
            ENQUEUE_FAILURES.labels(task=target.name).inc()
            logger.warning("could not enqueue %s%s: %s; the beat sweep will pick it up", target.name, args, exc)

    transaction.on_commit(send)


def task_send_later(name: str, *args: str, countdown: float) -> None:
    """Send the task called ``name`` now, to run in ``countdown`` seconds (a scheduled retry).

    Errors propagate: callers that have a sweep to fall back on catch and log them."""
    task_named(name).apply_async(args=list(args), countdown=countdown)
