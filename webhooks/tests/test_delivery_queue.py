"""Outbound deliveries can be routed to their own queue (a threads-pool worker), opt-in."""

from __future__ import annotations

from config.celery import app
from webhooks.tasks import delivery_attempt, delivery_queue


def _routed_queue(task) -> str:
    options = app.amqp.router.route({"queue": task.queue} if task.queue else {}, task.name, (), {}, task_type=task)
    return options["queue"].name


def test_deliveries_use_the_default_queue_unless_configured(settings, monkeypatch):
    monkeypatch.delenv("WEBHOOKS_DELIVERY_QUEUE", raising=False)
    settings.WEBHOOKS_DELIVERY_QUEUE = None
    assert delivery_queue() is None
    # As imported here (no setting): a plain `celery -A config worker` keeps serving deliveries.
    assert delivery_attempt.queue is None
    assert _routed_queue(delivery_attempt) == app.conf.task_default_queue


def test_the_delivery_queue_comes_from_the_setting_or_the_environment(settings, monkeypatch):
    monkeypatch.delenv("WEBHOOKS_DELIVERY_QUEUE", raising=False)
    settings.WEBHOOKS_DELIVERY_QUEUE = "webhooks"
    assert delivery_queue() == "webhooks"
    settings.WEBHOOKS_DELIVERY_QUEUE = None
    monkeypatch.setenv("WEBHOOKS_DELIVERY_QUEUE", "webhooks-env")
    assert delivery_queue() == "webhooks-env"
