"""Health checks of the components EasyPay depends on (database, cache, broker), and the registry through
which the apps built on core add their own: ``register_check`` (a readiness check, in ``/health/ready``
and ``/health/detailed``) and ``register_component`` (a status reported in ``/health/detailed`` only,
never failing it), both called from the app's ``AppConfig.ready``. core imports none of those apps."""

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
    # The project's Celery app is the current one (the config package creates it, Django imports that
    # package with its settings): core reaches it through Celery, not through config.
    from celery import current_app

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def broker_configured() -> bool:
    broker = settings.CELERY_BROKER_URL or ""
    return bool(broker) and not broker.startswith("memory://") and not settings.CELERY_TASK_ALWAYS_EAGER


@dataclass(frozen=True)
class _Check:
    check: Callable[[], None]
    enabled: Callable[[], bool] | None = None


_CHECKS: dict[str, _Check] = {}
_COMPONENTS: dict[str, Callable[[], dict]] = {}


def register_check(name: str, check: Callable[[], None], *, enabled: Callable[[], bool] | None = None) -> None:
    """Add a readiness check: ``check()`` raises when ``name`` is unavailable; ``enabled()`` (read on
    every probe) leaves it out when false. Registering a name again replaces it, in its place."""
    _CHECKS[name] = _Check(check, enabled)


def register_component(name: str, report: Callable[[], dict]) -> None:
    """Add a component to ``/health/detailed``: ``report()`` returns its status object. Reported after
    the checks, never turning the response into a 503."""
    _COMPONENTS[name] = report


def configured_checks() -> dict[str, Callable[[], None]]:
    return {name: entry.check for name, entry in _CHECKS.items() if entry.enabled is None or entry.enabled()}


def component_reports() -> dict[str, dict]:
    return {name: report() for name, report in _COMPONENTS.items()}


# core's own checks, first in every response.
register_check("database", check_database)
register_check("cache", check_cache)
register_check("broker", check_broker, enabled=broker_configured)


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
