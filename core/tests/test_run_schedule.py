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


# --- the real schedule ------------------------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch):
    """Every task run by the schedule is recorded instead of run (the tasks have tests of their own)."""
    from celery.app.task import Task

    from config.celery import app

    app.loader.import_default_modules()
    names: list[str] = []
    monkeypatch.setattr(Task, "apply", lambda self, *a, **k: names.append(self.name))
    return names


def _long_ago(entry) -> timezone.datetime:
    from core.management.commands.run_schedule import as_schedule

    sched = as_schedule(entry["schedule"])
    if hasattr(sched, "run_every"):
        return timezone.now() - sched.run_every - timedelta(seconds=1)
    return timezone.now() - timedelta(days=32)  # a crontab: at least one fire time since then


def test_every_entry_of_the_real_schedule_runs_then_waits_then_runs_again(recorded):
    from django.conf import settings

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert any(type(e["schedule"]).__name__ == "crontab" for e in schedule.values())  # the case that broke
    last_run = {}
    assert run_due(last_run) == list(schedule)
    assert sorted(recorded) == sorted(e["task"] for e in schedule.values())
    recorded.clear()
    assert run_due(last_run) == []  # each ran a moment ago
    assert recorded == []
    for name, entry in schedule.items():
        last_run[name] = _long_ago(entry)
    assert run_due(last_run) == list(schedule)


def test_development_schedule_bills_every_minute(recorded, settings):
    """config.settings.local's override (SUBSCRIPTION_BILLING_EVERY_SECONDS=60) as run_schedule sees it."""
    settings.CELERY_BEAT_SCHEDULE = {
        **settings.CELERY_BEAT_SCHEDULE,
        "subscriptions.bill_due": {
            "task": "subscriptions.tasks.bill_due_subscriptions",
            "schedule": timedelta(seconds=60),
        },
    }
    last_run = {}
    run_due(last_run)
    recorded.clear()
    last_run["subscriptions.bill_due"] = timezone.now() - timedelta(seconds=61)
    assert run_due(last_run) == ["subscriptions.bill_due"]
    assert recorded == ["subscriptions.tasks.bill_due_subscriptions"]


def test_a_schedule_that_is_not_one_fails_clearly():
    from core.management.commands.run_schedule import as_schedule

    with pytest.raises(TypeError):
        as_schedule("every day")


@pytest.mark.django_db
def test_every_entry_loads_into_django_celery_beat_and_is_due_works():
    from celery.schedules import crontab
    from django.conf import settings
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app
    from core.beat import sync_beat_schedule
    from core.management.commands.run_schedule import as_schedule

    sync_beat_schedule()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        model = PeriodicTask.objects.get(name=name)
        assert model.task == entry["task"] and model.enabled
        loaded = ModelEntry(model, app=app)
        expected = as_schedule(entry["schedule"])
        if isinstance(expected, crontab):
            assert loaded.schedule.hour == expected.hour and loaded.schedule.minute == expected.minute, name
        else:
            assert loaded.schedule.run_every == expected.run_every, name
        state = loaded.is_due()  # just loaded: last run "now", so not due, with a positive wait
        assert state.is_due is False and state.next > 0, name
        model.last_run_at = _long_ago(entry)
        model.save()
        assert ModelEntry(model, app=app).is_due().is_due is True, name


@pytest.mark.django_db(transaction=True)  # the scheduler closes and reopens its connection
def test_celery_beat_scheduler_beats_the_heartbeat():
    from django_celery_beat.schedulers import DatabaseScheduler

    from config.celery import app
    from core.beat import SingleBeatScheduler, sync_beat_schedule
    from core.models import Heartbeat

    assert app.conf.beat_scheduler == "core.beat:SingleBeatScheduler"
    sync_beat_schedule()
    scheduler = SingleBeatScheduler(app=app, lazy=True)
    assert isinstance(scheduler, DatabaseScheduler)
    assert not Heartbeat.objects.exists()
    wait = scheduler.tick()
    assert 0 < wait <= 15
    assert timezone.now() - Heartbeat.objects.get(name="scheduler").beat_at < timedelta(seconds=5)


@pytest.mark.django_db(transaction=True)  # the loop closes stale connections like a long-running process
def test_run_schedule_once_beats_the_heartbeat(recorded):
    from django.core.management import call_command

    from core.models import Heartbeat

    call_command("run_schedule", "--once", stdout=__import__("io").StringIO())
    assert Heartbeat.objects.filter(name="scheduler").exists()
    assert recorded  # and ran the schedule


@shared_task(name="core.tests.told_to_stop_mid_task")
def told_to_stop_mid_task():
    """A task that is running when the stop signal lands, and that (like many tasks) handles its own
    errors with ``except Exception``."""
    import os
    import signal as signals

    CALLS.append("task")
    try:
        os.kill(os.getpid(), signals.SIGTERM)
        if len(CALLS) > 3:  # the old handler's exception was swallowed here and the loop went on
            raise AssertionError("run_schedule kept running after SIGTERM")
    except Exception:  # the point of the test
        CALLS.append("swallowed")


@pytest.mark.django_db
def test_a_stop_signal_that_lands_inside_a_task_still_ends_the_loop(settings):
    """`make run`'s Ctrl-C hung when SIGTERM reached run_schedule inside a task: the exception raised by
    the signal handler was caught by the task's ``except Exception`` and the scheduler never stopped."""
    import signal as signals

    from core.management.commands.run_schedule import Command

    CALLS.clear()
    settings.CELERY_BEAT_SCHEDULE = {
        "test.stop": {"task": "core.tests.told_to_stop_mid_task", "schedule": timedelta(seconds=0.01)},
        "test.after": {"task": "core.tests.record_call", "schedule": timedelta(seconds=0.01), "args": ("after",)},
    }
    previous = signals.getsignal(signals.SIGTERM), signals.getsignal(signals.SIGINT)
    try:
        Command().handle(interval=0.05, once=False)
    finally:
        signals.signal(signals.SIGTERM, previous[0])
        signals.signal(signals.SIGINT, previous[1])
    assert CALLS == ["task"]  # stopped after the running task, started nothing more


def test_each_kind_of_schedule_is_described_as_it_runs():
    from celery.schedules import crontab

    from core.management.commands.run_schedule import describe

    assert describe(20) == "every 20 s"
    assert describe(timedelta(seconds=90)) == "every 90 s"
    assert describe(timedelta(minutes=5)) == "every 5 min"
    assert describe(timedelta(hours=1)) == "every 1 h"
    assert describe(0.5) == "every 0.5 s"
    assert describe(crontab(minute=40)) == "cron 40 * * * * (UTC)"
    assert describe(crontab(hour=7, minute=0, day_of_week="mon")) == "cron 0 7 * * mon (UTC)"


@pytest.mark.django_db(transaction=True)
def test_run_schedule_prints_when_each_real_entry_runs_before_running_it(recorded, settings):
    """What `make run` shows at start is read from the schedule it runs (a hard-coded banner once said
    'webhook retries every minute' while they ran every 20 s)."""
    import io

    from django.core.management import call_command

    from core.management.commands.run_schedule import describe

    out = io.StringIO()
    call_command("run_schedule", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    described = [line for line in lines if line.startswith("schedule: ")]
    assert [line.split()[1] for line in described] == list(settings.CELERY_BEAT_SCHEDULE)
    settings_seconds = float(settings.WEBHOOK_RETRY_POLL_SECONDS)
    assert f"schedule: webhooks.retry_due_deliveries {describe(settings_seconds)}" in lines
    assert "schedule: notifications.webhook_failures cron 40 * * * * (UTC)" in lines
    assert lines.index(described[-1]) < min(i for i, line in enumerate(lines) if line.startswith("ran "))
