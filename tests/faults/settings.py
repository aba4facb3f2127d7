"""Production settings plus the knobs the fault tests and the soak need that have no environment variable.

Everything else (timeouts, circuit breaker, reconcile thresholds, webhook retry schedule) is set through
the ordinary environment variables by ``tests/faults/stack.py``. Two things are not configurable from the
environment in ``config/settings/base.py`` yet, so this module overrides them (and only them):

* ``CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]`` (base.py hard-codes 3600 s): how long Redis
  keeps a message a dead worker had taken before handing it to another worker.
  ``FAULTS_VISIBILITY_TIMEOUT`` seconds.
* the beat intervals of the every-minute sweeps (due webhook deliveries and inbound events) and of
  ``payments.reconcile_pending`` (5 minutes), so a test waits seconds instead of minutes:
  ``FAULTS_SWEEP_SECONDS`` and ``FAULTS_RECONCILE_SECONDS``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from config.settings.production import *  # noqa: F403
from config.settings.production import CELERY_BEAT_SCHEDULE, CELERY_BROKER_TRANSPORT_OPTIONS


def _seconds(name: str) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else 0


if _seconds("FAULTS_VISIBILITY_TIMEOUT"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": _seconds("FAULTS_VISIBILITY_TIMEOUT"),
    }

CELERY_BEAT_SCHEDULE = {name: dict(entry) for name, entry in CELERY_BEAT_SCHEDULE.items()}
if _seconds("FAULTS_SWEEP_SECONDS"):
    for _name in ("webhooks.retry_due_deliveries", "webhooks.retry_due_inbound"):
        if _name in CELERY_BEAT_SCHEDULE:
            CELERY_BEAT_SCHEDULE[_name]["schedule"] = timedelta(seconds=_seconds("FAULTS_SWEEP_SECONDS"))
if _seconds("FAULTS_RECONCILE_SECONDS") and "payments.reconcile_pending" in CELERY_BEAT_SCHEDULE:
    CELERY_BEAT_SCHEDULE["payments.reconcile_pending"]["schedule"] = timedelta(
        seconds=_seconds("FAULTS_RECONCILE_SECONDS")
    )
