"""Health checks of the components EasyPay depends on (database, cache, broker)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"health:{secrets.token_hex(4)}"
    cache.set(key, "1", timeout=5)
    value = cache.get(key)
    cache.delete(key)
    if value != "1":
        raise RuntimeError("cache did not return the value written")


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def configured_checks() -> dict[str, Callable[[], None]]:
    checks: dict[str, Callable[[], None]] = {"database": check_database, "cache": check_cache}
    broker = settings.CELERY_BROKER_URL
    if broker and not broker.startswith("memory://") and not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = check_broker
    return checks


def run_checks(checks: dict[str, Callable[[], None]] | None = None) -> list[CheckResult]:
    results = []
    for name, check in (checks or configured_checks()).items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            # Only the exception's type reaches the response: messages can carry hostnames or DSNs.
            results.append(CheckResult(name, False, _ms(started), type(exc).__name__))
        else:
            results.append(CheckResult(name, True, _ms(started)))
    return results


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
