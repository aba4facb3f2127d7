"""The scheduler's heartbeat: written by whichever scheduler runs (``run_schedule`` under ``make run``,
``celery beat`` with :class:`core.beat.SingleBeatScheduler` elsewhere), read by
``/health/detailed`` and the ``easypay_scheduler_heartbeat_age_seconds`` metric."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

logger = logging.getLogger("easypay.schedule")

SCHEDULER = "scheduler"


def heartbeat_beat(*, name: str = SCHEDULER, now: datetime | None = None) -> None:
    """Record that ``name`` is alive now. A database error is logged, never raised: a scheduler must not
    die because one beat could not be written (the heartbeat going stale is the alarm)."""
    from core.models import Heartbeat

    try:
        Heartbeat.objects.update_or_create(
            name=name,
            defaults={"beat_at": now or timezone.now(), "hostname": socket.gethostname()[:255], "pid": os.getpid()},
        )
    except DatabaseError:
        logger.warning("could not record the %s heartbeat", name, exc_info=True)


@dataclass(frozen=True)
class HeartbeatStatus:
    status: str  # "ok", "stale" or "not_seen"
    last_beat_at: datetime | None
    age_seconds: float | None
    stale_after_seconds: int


def stale_after_seconds() -> int:
    return int(settings.SCHEDULER_HEARTBEAT_STALE_SECONDS)


def heartbeat_status(*, name: str = SCHEDULER, now: datetime | None = None) -> HeartbeatStatus:
    from core.models import Heartbeat

    limit = stale_after_seconds()
    row = Heartbeat.objects.filter(name=name).only("beat_at").first()
    if row is None:
        return HeartbeatStatus("not_seen", None, None, limit)
    age = max(0.0, ((now or timezone.now()) - row.beat_at).total_seconds())
    return HeartbeatStatus("stale" if age > limit else "ok", row.beat_at, round(age, 1), limit)


def heartbeat_age_seconds() -> float:
    """For the metric: seconds since the scheduler's last beat; -1 when it never beat or cannot be read."""
    try:
        status = heartbeat_status()
    except DatabaseError:
        return -1.0
    return -1.0 if status.age_seconds is None else status.age_seconds
