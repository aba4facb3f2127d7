"""Fixtures of the schema fuzz tests: a merchant key with every scope and limits no fuzz run reaches,
the Authorize.Net emulator, the production SSRF defaults, an egress guard, and the WSGI app called
directly (as Django's own test client does, without closing the test transaction's connection)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from .egress import EgressGuard
from .seeds import Seeds
from .stats import STATS, FuzzStats

UNREACHABLE_LIMIT = 10_000_000


@pytest.fixture(scope="session")
def fuzz_stats() -> FuzzStats:
    return STATS


def pytest_terminal_summary(terminalreporter):
    if not STATS.requests:
        return
    data = STATS.as_dict()
    terminalreporter.write_sep("-", "schema fuzz")
    terminalreporter.write_line(
        f"{data['requests']} requests over {data['operations']} operations "
        f"(max_examples={data['max_examples']}, seed={data['seed']}); statuses: {data['by_status']}"
    )
    report = os.environ.get("FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(data, indent=2))


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's test client detaches ``close_old_connections`` from the request signals so a request
    does not close the connection holding the test's transaction; calling the WSGI app directly
    (schemathesis' WSGI transport) needs the same."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def egress_guard(monkeypatch) -> EgressGuard:
    return EgressGuard().install(monkeypatch)


@pytest.fixture
def fuzz_key(db, make_api_key, merchant):
    """All scopes, test mode, rate limits far above any fuzz run (the merchant's aggregate too)."""
    merchant.rate_limit_per_minute = merchant.rate_limit_per_hour = merchant.rate_limit_per_day = UNREACHABLE_LIMIT
    merchant.max_active_api_keys = 100_000  # the fuzzer creates keys
    merchant.save()
    return make_api_key(
        merchant=merchant,
        permissions=["*"],
        name="fuzz",
        rate_limit_per_minute=UNREACHABLE_LIMIT,
        rate_limit_per_hour=UNREACHABLE_LIMIT,
        rate_limit_per_day=UNREACHABLE_LIMIT,
    )


class ErrorLog(logging.Handler):
    """Every ERROR record logged while a test runs ("logger: message: exception"), whoever catches it:
    an error the app swallowed (an audit row lost, a database error) is a failure too."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "django.request":
            return  # Django's per-response line ("Bad Gateway: ..."): the status itself is checked
        cause = f": {record.exc_info[1]!r}"[:300] if record.exc_info else ""
        self.records.append(f"{record.name}: {record.getMessage()}{cause}")


@pytest.fixture
def server_errors():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


@pytest.fixture
def fuzz_env(settings, anet_sandbox, egress_guard, wsgi_in_test_transaction, fuzz_key, server_errors):
    """Everything one fuzzed operation needs. Webhook URLs get the production SSRF rules (the test
    settings allow private URLs): fuzzed endpoints must not make deliveries to loopback services."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.AUDIT_SYNC_WRITES = True
    return {"key": fuzz_key.key, "sandbox": anet_sandbox, "guard": egress_guard, "errors": server_errors}


@pytest.fixture
def fuzz_seeds(fuzz_env, merchant, make_api_key) -> Seeds:
    """Real objects for by-id operations, made the first time an operation needs them."""
    return Seeds(key=fuzz_env["key"], merchant=merchant, make_api_key=make_api_key)
