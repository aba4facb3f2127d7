"""Fixtures of the hostile-input tests: the security tests' merchants and egress guard, a webhook
receiver that answers whatever bytes a test gives it, and helpers to count what was stored."""

from __future__ import annotations

import pytest

from tests.receivers import running_receiver
from tests.security.conftest import egress_guard, intruder, owner

__all__ = ["egress_guard", "intruder", "owner"]


@pytest.fixture
def hostile_receiver():
    """A receiver whose every answer is ``status`` with ``body`` (raw bytes, any of them)."""
    with running_receiver("/hook") as recv:
        recv.body = b"ok"
        yield recv


def pytest_terminal_summary(terminalreporter):
    from .test_api_surface import STATS

    if STATS["requests"]:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATS["statuses"].items()))
        terminalreporter.write_line(
            f"hostile API layer: {STATS['requests']} requests over {len(STATS['operations'])} operations "
            f"(targets {dict(STATS['targets'])}; statuses {statuses})"
        )
