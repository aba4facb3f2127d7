"""The in-process schedule runner used by `make run`."""

from datetime import timedelta

import pytest
from celery import shared_task
from django.utils import timezone

from core.management.commands.run_schedule import run_due

CALLS: list[str] = []


@shared_task(name="core.tests.record_call")
def record_call(label):
    CALLS.append(label)


@pytest.fixture
def one_entry(settings):
    CALLS.clear()
    settings.CELERY_BEAT_SCHEDULE = {
        "test.every_minute": {"task": "core.tests.record_call", "schedule": timedelta(minutes=1), "args": ("m",)}
    }


def test_first_pass_runs_everything_then_only_what_is_due(one_entry):
    last_run = {}
    assert run_due(last_run) == ["test.every_minute"]
    assert CALLS == ["m"]
    assert run_due(last_run) == []  # ran a moment ago: not due
    last_run["test.every_minute"] = timezone.now() - timedelta(minutes=2)
    assert run_due(last_run) == ["test.every_minute"]
    assert CALLS == ["m", "m"]


@pytest.mark.django_db
def test_every_configured_task_is_registered():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    missing = [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] not in app.tasks]
    assert missing == []
