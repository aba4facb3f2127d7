"""The beat schedule declared in settings (code, reviewed like code), loaded into django-celery-beat
so staff see every entry in the admin right after ``migrate`` and can pause it there, and the
scheduler class ``celery beat`` runs: django-celery-beat's, behind a PostgreSQL advisory lock (one
scheduler however many beats are started), beating the scheduler heartbeat while it schedules."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from core.heartbeat import heartbeat_beat

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)


def sync_beat_schedule(**kwargs) -> int:
    from celery import current_app
    from django_celery_beat.schedulers import ModelEntry

    app = current_app._get_current_object()  # the project's app (see core.health.check_broker)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        ModelEntry.from_entry(name, app=app, **entry)
    return len(settings.CELERY_BEAT_SCHEDULE)


BEAT_LOCK_KEY = 0x6561737970617962  # "easypayb": one PostgreSQL advisory lock for the one scheduler


class BeatLock:
    """A session-level PostgreSQL advisory lock on a connection of its own (not Django's, which is closed
    between ticks). Held while that connection lives; lost, it is taken again by whichever beat asks first.
    On SQLite (one machine, development) there is nothing to take and the lock always counts as held."""

    def __init__(self) -> None:
        self.conn: psycopg.Connection | None = None

    def held(self) -> bool:
        from django.db import connections

        database = connections["default"].settings_dict
        if "postgresql" not in database["ENGINE"]:
            return True
        if self.conn is not None:
            try:
                self.conn.execute("SELECT 1")
                return True
            except Exception:
                self.release()
        import psycopg

        try:
            conn = psycopg.connect(
                dbname=database["NAME"],
                user=database.get("USER") or None,
                password=database.get("PASSWORD") or None,
                host=database.get("HOST") or None,
                port=database.get("PORT") or None,
                autocommit=True,
                connect_timeout=3,
            )
        except Exception:
            return False
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()
        assert row is not None  # a SELECT of one function call returns exactly one row
        if row[0]:
            self.conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler that sends nothing unless it holds the beat lock, so a
    second beat started by mistake (or during a rolling deploy) waits instead of scheduling twice. While
    it schedules it records the scheduler heartbeat at most every ``SCHEDULER_HEARTBEAT_SECONDS`` (and
    wakes up at least that often to do it); a beat standing by records none, so a dead active beat
    shows as stale until the standby takes the lock."""

    lock_retry_seconds = 5.0
    _last_heartbeat = float("-inf")

    def __init__(self, *args, **kwargs) -> None:
        self._beat_lock = BeatLock()
        self._was_holding: bool | None = None
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        holding = self._beat_lock.held()
        if holding != self._was_holding:
            logger.warning("beat lock %s", "taken: scheduling" if holding else "held elsewhere: standing by")
            self._was_holding = holding
        if not holding:
            return self.lock_retry_seconds
        interval = super().tick(*args, **kwargs)
        every = float(settings.SCHEDULER_HEARTBEAT_SECONDS)
        now = time.monotonic()
        if now - self._last_heartbeat >= every:
            heartbeat_beat()
            self._last_heartbeat = now
        return min(interval, every)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._beat_lock.release()
