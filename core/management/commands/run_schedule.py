"""``run_schedule``: the beat schedule run in-process, for `make run` (no broker, eager tasks).

With a broker, `celery -A config beat` does this job; without one (the embedded defaults) nothing
would ever send webhook retries, reconcile lost replies or bill subscriptions. This loop runs each
entry of ``CELERY_BEAT_SCHEDULE`` when its schedule says it is due, in this process, and beats the
scheduler heartbeat that ``/health/detailed`` reports.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timedelta

from celery import current_app
from celery.schedules import BaseSchedule, crontab, maybe_schedule
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from core.heartbeat import heartbeat_beat

logger = logging.getLogger("easypay.schedule")

# The project's Celery app (created by the config package, current once Django has loaded its settings):
# core reaches it through Celery so that it imports nothing above it.
app = current_app


def as_schedule(value) -> BaseSchedule:
    """A beat entry's ``schedule`` as Celery reads it: a number or timedelta becomes an interval
    schedule, a ``crontab`` (or any other schedule) is kept as it is."""
    if not isinstance(value, int | float | timedelta | BaseSchedule):
        raise TypeError(f"not a schedule: {value!r}")
    return maybe_schedule(value, app=app)


def describe(value) -> str:
    """When a beat entry runs, for a person: ``every 20 s``, ``every 5 min``, ``cron 40 * * * * (UTC)``."""
    sched = as_schedule(value)
    if isinstance(sched, crontab):
        fields = (sched._orig_minute, sched._orig_hour, sched._orig_day_of_month, sched._orig_month_of_year)
        return "cron " + " ".join(str(f) for f in (*fields, sched._orig_day_of_week)) + " (UTC)"
    if not hasattr(sched, "run_every"):  # another kind of schedule (solar, ...): Celery's own words
        return str(sched)
    seconds = sched.run_every.total_seconds()
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"every {int(seconds // size)} {unit}"
    return f"every {seconds:g} s"


def run_due(
    last_run: dict[str, datetime], *, now: datetime | None = None, stopping: threading.Event | None = None
) -> list[str]:
    """Run every entry that is due (an entry never run before is due at once); return their names.
    Once ``stopping`` is set, no further entry is started."""
    now = now or timezone.now()
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if stopping is not None and stopping.is_set():
            break
        sched = as_schedule(entry["schedule"])
        previous = last_run.get(name)
        if previous is not None and not sched.is_due(previous).is_due:
            continue
        last_run[name] = now
        try:
            app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        except Exception:
            logger.exception("scheduled task %s failed", entry["task"])
        ran.append(name)
    return ran


# SIGTERM / SIGINT only set this flag: the loop stops after the task it is running (a task ends in
# seconds) and never starts another. Raising from the handler instead was swallowed by whatever
# ``except Exception`` the signal landed in (a task's own error handling, ``run_due``'s), and the
# scheduler kept running after `make run` was told to stop.
_stopping = threading.Event()


def _stop(signum, frame):
    _stopping.set()


def _sleep(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not _stopping.is_set() and time.monotonic() < deadline:
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))


class Command(BaseCommand):
    help = "Run the Celery beat schedule in this process (development without a broker)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=15.0, help="seconds between checks (default 15)")
        parser.add_argument("--once", action="store_true", help="run what is due once and exit")

    def handle(self, *args, **options):
        app.loader.import_default_modules()
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            # A bad entry fails here, at start, not 15 s later; each good one says when it runs (read
            # from the schedule itself, so what the terminal shows is what will happen).
            self.stdout.write(f"schedule: {name} {describe(entry['schedule'])}")
        # SIGTERM (the stack stopping) and SIGINT (Ctrl-C) end the loop between tasks, exit status 0.
        _stopping.clear()
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        last_run: dict[str, datetime] = {}
        interval = min(options["interval"], float(settings.SCHEDULER_HEARTBEAT_SECONDS))
        while not _stopping.is_set():
            close_old_connections()
            heartbeat_beat()
            for name in run_due(last_run, stopping=_stopping):
                self.stdout.write(f"ran {name}")
            if options["once"]:
                return
            _sleep(interval)
