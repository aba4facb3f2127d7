"""Fault tests: the real stack (gunicorn, Celery, PostgreSQL, Redis, the emulator) on loopback, with
processes stopped and killed on purpose. Slow (a stack takes ~20 s to start), so they run only with
``make faults`` (EASYPAY_FAULTS=1), never as part of ``make test``."""

from __future__ import annotations

import os

import pytest

ENABLED = os.environ.get("EASYPAY_FAULTS", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    # Registered here so the marker is known under --strict-markers without touching pytest.ini.
    config.addinivalue_line("markers", "faults: fault-injection test against real processes (make faults)")


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="run with make faults")
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(skip)
