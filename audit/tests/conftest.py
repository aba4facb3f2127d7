"""Fixtures of the audit tests: synchronous audit writes (deterministic rows)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _audit_sync_writes(settings):
    settings.AUDIT_SYNC_WRITES = True
