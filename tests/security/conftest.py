"""Fixtures of the security tests: two merchants with API clients and an egress guard on every test
so no webhook delivery or SSRF probe ever sends a packet beyond loopback. Helpers that create objects
through the API (against the Authorize.Net emulator) are in ``tests/security/helpers.py``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.fuzz.egress import EgressGuard
from tests.security.helpers import key_client

HIGH_LIMIT = 1_000_000


@pytest.fixture(autouse=True)
def egress_guard(monkeypatch) -> EgressGuard:
    return EgressGuard().install(monkeypatch)


@pytest.fixture
def owner(merchant, make_api_key) -> APIClient:
    """Merchant A: all scopes, limits no test reaches."""
    return key_client(
        make_api_key(
            merchant=merchant,
            name="owner",
            rate_limit_per_minute=HIGH_LIMIT,
            rate_limit_per_hour=HIGH_LIMIT,
            rate_limit_per_day=HIGH_LIMIT,
        )
    )


@pytest.fixture
def intruder(other_merchant, make_api_key) -> APIClient:
    """Merchant B: all scopes too; must never see or touch A's objects."""
    return key_client(
        make_api_key(
            merchant=other_merchant,
            name="intruder",
            rate_limit_per_minute=HIGH_LIMIT,
            rate_limit_per_hour=HIGH_LIMIT,
            rate_limit_per_day=HIGH_LIMIT,
        )
    )
