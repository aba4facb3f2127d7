"""Prometheus gauges read at scrape time: the scheduler's heartbeat age and whether it is stale."""

from __future__ import annotations

from prometheus_client import Gauge

from core.heartbeat import heartbeat_age_seconds, stale_after_seconds

SCHEDULER_HEARTBEAT_AGE = Gauge(
    "easypay_scheduler_heartbeat_age_seconds",
    "Seconds since the beat scheduler last beat (-1: it never beat, or the database did not answer).",
)
SCHEDULER_HEARTBEAT_AGE.set_function(heartbeat_age_seconds)

SCHEDULER_STALE = Gauge(
    "easypay_scheduler_stale",
    "1 when the beat scheduler's heartbeat is older than SCHEDULER_HEARTBEAT_STALE_SECONDS or missing.",
)


def _stale() -> float:
    age = heartbeat_age_seconds()
    return 1.0 if age < 0 or age > stale_after_seconds() else 0.0


SCHEDULER_STALE.set_function(_stale)
