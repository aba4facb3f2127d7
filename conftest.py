"""Project-wide pytest fixtures: merchants, API keys, authenticated API clients, backend markers."""

from __future__ import annotations

import importlib.util
import os

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from accounts.tests.factories import APIKeyFactory, MerchantFactory


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


if _has_module("payments.gateways.sandbox.pytest_plugin"):
    pytest_plugins = ["payments.gateways.sandbox.pytest_plugin"]

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    """``postgres``/``redis`` tests skip, with the reason, only outside CI. Under CI=true the session
    refuses to start without both backends (see ``pytest_sessionstart``), so they always run there."""
    if IN_CI:
        return
    from django.conf import settings

    is_pg = "postgresql" in settings.DATABASES["default"]["ENGINE"]
    has_redis = bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not is_pg:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (locks, triggers); make test found only SQLite"))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs a real Redis; REDIS_URL is not set"))


def _own_servers() -> bool:
    """``make faults`` and ``make cluster-test`` start their own PostgreSQL and Redis servers (and unset
    DATABASE_URL/REDIS_URL so nothing reaches the shared ones); the shared-backend rule is not theirs."""
    return any(
        os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("EASYPAY_FAULTS", "EASYPAY_CLUSTER")
    )


def pytest_sessionstart(session):
    if IN_CI and not _own_servers():
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine or not settings.REDIS_URL:
            raise pytest.UsageError("CI=true: tests must run against PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")


@pytest.fixture(autouse=True)
def _clear_cache():
    from accounts.selectors import forget_local_key_snapshot

    cache.clear()
    forget_local_key_snapshot()  # each process's copies of API keys, as a restart would
    yield
    cache.clear()
    forget_local_key_snapshot()


@pytest.fixture(autouse=True)
def _no_card_data_in_sent_messages(request):
    """Every email and SMS a test sends is scanned for card numbers and secrets (notifications/tests/scan.py)."""
    from django.core import mail

    from notifications import sms
    from notifications.tests import scan

    sms.outbox.clear()
    yield

    for message in getattr(mail, "outbox", []):
        scan.check_email_message(message, where=request.node.nodeid)
    for text in sms.outbox:
        scan.check("sms", [text.body], where=request.node.nodeid)


def pytest_terminal_summary(terminalreporter):
    from notifications.tests import scan

    if any(scan.counts.values()):
        terminalreporter.write_line(
            f"notifications: scanned {scan.counts['email']} emails and {scan.counts['sms']} SMS"
            " for card data and secrets"
        )


@pytest.fixture
def merchant(db):
    return MerchantFactory()


@pytest.fixture
def other_merchant(db):
    return MerchantFactory()


@pytest.fixture
def make_api_key(db):
    """``make_api_key(merchant=..., permissions=[...], **fields)`` -> CreatedKey (``.key``, ``.api_key``)."""

    def _make(merchant=None, permissions=None, name="test key", **fields):
        return APIKeyFactory(
            merchant=merchant or MerchantFactory(),
            name=name,
            permissions=["*"] if permissions is None else permissions,
            **fields,
        )

    return _make


@pytest.fixture
def api_key(merchant, make_api_key):
    return make_api_key(merchant=merchant)


@pytest.fixture
def api_client(api_key):
    """An APIClient authenticated as ``merchant`` with an all-scopes test-mode key."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key.key)
    client.merchant = api_key.api_key.merchant
    client.api_key = api_key
    return client


@pytest.fixture
def other_api_client(other_merchant, make_api_key):
    created = make_api_key(merchant=other_merchant)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created.key)
    client.merchant = other_merchant
    client.api_key = created
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def redis_commands(monkeypatch):
    """The commands sent to any Redis from now on (one entry per round trip), for counting them."""
    import redis.connection

    sent = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent
