"""The beat schedule declared in settings (code, reviewed like code), loaded into django-celery-beat
so staff see every entry in the admin right after ``migrate`` and can pause it there, and the
scheduler class ``celery beat`` runs: django-celery-beat's, beating the scheduler heartbeat."""

from __future__ import annotations

import time

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from core.heartbeat import heartbeat_beat


def sync_beat_schedule(**kwargs) -> int:
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        ModelEntry.from_entry(name, app=app, **entry)
    return len(settings.CELERY_BEAT_SCHEDULE)


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, recording the scheduler heartbeat at most every
    ``SCHEDULER_HEARTBEAT_SECONDS`` (and waking up at least that often to do it)."""

    _last_heartbeat = float("-inf")

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        every = float(settings.SCHEDULER_HEARTBEAT_SECONDS)
        now = time.monotonic()
        if now - self._last_heartbeat >= every:
            heartbeat_beat()
            self._last_heartbeat = now
        return min(interval, every)
