"""``run_schedule``: the beat schedule run in-process, for `make run` (no broker, eager tasks).

With a broker, `celery -A config beat` does this job; without one (the embedded defaults) nothing
would ever send webhook retries, reconcile lost replies or bill subscriptions. This loop runs each
entry of ``CELERY_BEAT_SCHEDULE`` when its schedule says it is due, in this process.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from celery.schedules import schedule as celery_schedule
from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from config.celery import app

logger = logging.getLogger("easypay.schedule")


def as_schedule(value) -> celery_schedule:
    return value if isinstance(value, celery_schedule) else celery_schedule(run_every=value)


def run_due(last_run: dict[str, datetime], *, now: datetime | None = None) -> list[str]:
    """Run every entry that is due (an entry never run before is due at once); return their names."""
    now = now or timezone.now()
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
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


class Command(BaseCommand):
    help = "Run the Celery beat schedule in this process (development without a broker)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=15.0, help="seconds between checks")
        parser.add_argument("--once", action="store_true", help="run what is due once and exit")

    def handle(self, *args, **options):
        app.loader.import_default_modules()
        last_run: dict[str, datetime] = {}
        while True:
            for name in run_due(last_run):
                self.stdout.write(f"ran {name}")
            if options["once"]:
                return
            time.sleep(options["interval"])
