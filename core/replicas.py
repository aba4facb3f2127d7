"""Read replicas with read-your-writes across requests and instances.

The router (Saleor's rule) sends every write and every read nobody marked to the primary ("default").
A read-only path asks :func:`read_alias` for a database explicitly and uses ``.using(alias)``.

After a merchant's write commits, :func:`record_write` stores the primary's WAL position
(``pg_current_wal_lsn()``) for that merchant in Redis (only ever raised). :func:`read_alias` then returns a
replica only if that replica's ``pg_last_wal_replay_lsn()`` (asked at most every
``DATABASE_REPLICA_LSN_CACHE_SECONDS`` per process) has passed the merchant's position and its replay is
not more than ``DATABASE_REPLICA_MAX_LAG_SECONDS`` behind; otherwise the primary. When the position cannot
be read (Redis unreachable), or inside a transaction, the answer is the primary. A replica that errors is
left alone for a few seconds. Each skip is counted in ``easypay_replica_skipped_total``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from prometheus_client import Counter

logger = logging.getLogger(__name__)

REPLICA_READS = Counter("easypay_replica_reads_total", "Reads served by a replica or the primary", ["database"])
REPLICA_SKIPPED = Counter("easypay_replica_skipped_total", "Replica passed over for a read", ["replica", "reason"])

_LSN_KEY = "easypay:rw-lsn:{merchant}"
_LSN_TTL_SECONDS = 3600
# Only ever raise the stored position: two writes of one merchant may finish out of order.
_RAISE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""
_DOWN_SECONDS = 3.0
GLOBAL = "-"  # writes made for no merchant in particular (the processor's webhook callbacks)


class PrimaryReplicaRouter:
    """Writes, migrations and unmarked reads use the primary; replicas are read only via ``.using()``."""

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


def parse_lsn(text: str | None) -> int | None:
    if not text:
        return None
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class ReplicaStatus:
    replay_lsn: int | None
    lag_seconds: float | None
    checked_at: float
    error: str | None = None


_status: dict[str, ReplicaStatus] = {}
_status_lock = threading.Lock()
_round_robin = itertools.count()


def _query_status(alias: str) -> ReplicaStatus:
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_last_wal_replay_lsn()::text, CASE WHEN pg_last_wal_receive_lsn() = "
                "pg_last_wal_replay_lsn() THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - "
                "pg_last_xact_replay_timestamp()), 0) END"
            )
            lsn, lag = cursor.fetchone()
        return ReplicaStatus(parse_lsn(lsn), float(lag or 0), now)
    except Exception as exc:
        connections[alias].close()
        return ReplicaStatus(None, None, now, type(exc).__name__)


def replica_status(alias: str, max_age: float | None = None) -> ReplicaStatus:
    max_age = settings.DATABASE_REPLICA_LSN_CACHE_SECONDS if max_age is None else max_age
    current = _status.get(alias)
    now = time.monotonic()
    if current is not None:
        age = now - current.checked_at
        if age < (_DOWN_SECONDS if current.error else max_age):
            return current
    fresh = _query_status(alias)
    with _status_lock:
        _status[alias] = fresh
    return fresh


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def merchant_min_lsn(merchant_id) -> int | None:
    """The position a read for ``merchant_id`` must see: the later of the merchant's last write and the
    last write nobody owned (the processor's callbacks); 0 when none is known; ``None`` when it cannot be
    read (Redis unreachable)."""
    keys = [_LSN_KEY.format(merchant=GLOBAL)]
    if merchant_id is not None:
        keys.append(_LSN_KEY.format(merchant=merchant_id))
    try:
        values = _redis().mget(keys)
    except Exception:
        return None
    return max(int(value) if value else 0 for value in values)


def record_write(merchant_id) -> None:
    """Remember the primary's WAL position after a committed write of ``merchant_id``."""
    if not replica_aliases():
        return
    if merchant_id is None:
        merchant_id = GLOBAL
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            lsn = parse_lsn(cursor.fetchone()[0])
        client = _redis()
        client.eval(_RAISE_LUA, 1, _LSN_KEY.format(merchant=merchant_id), lsn, _LSN_TTL_SECONDS)
    except Exception:
        # Without a recorded position the next reads may miss this write on a replica: say so loudly.
        logger.exception("could not record the write position", extra={"merchant_id": str(merchant_id)})


def read_alias(merchant_id=None) -> str:
    """The database a read-only request of ``merchant_id`` may use: a caught-up replica, else "default"."""
    aliases = replica_aliases()
    if not aliases or connections["default"].in_atomic_block:
        return "default"
    minimum = merchant_min_lsn(merchant_id)
    if minimum is None:
        REPLICA_SKIPPED.labels(replica="all", reason="position_unknown").inc()
        REPLICA_READS.labels(database="default").inc()
        return "default"
    start = next(_round_robin)
    max_lag = settings.DATABASE_REPLICA_MAX_LAG_SECONDS
    for offset in range(len(aliases)):
        alias = aliases[(start + offset) % len(aliases)]
        status = replica_status(alias)
        if status.error or status.replay_lsn is None:
            REPLICA_SKIPPED.labels(replica=alias, reason="down").inc()
            continue
        if status.lag_seconds is not None and status.lag_seconds > max_lag:
            REPLICA_SKIPPED.labels(replica=alias, reason="lagging").inc()
            continue
        if status.replay_lsn < minimum:
            # The cached position may be a few ms old: ask once more before giving up on this one.
            status = replica_status(alias, max_age=0)
            if status.replay_lsn is None or status.replay_lsn < minimum:
                REPLICA_SKIPPED.labels(replica=alias, reason="behind_merchant").inc()
                continue
        REPLICA_READS.labels(database=alias).inc()
        return alias
    REPLICA_READS.labels(database="default").inc()
    return "default"


def replicas_health() -> dict[str, dict]:
    """Each replica's state for /health/detailed (never fails)."""
    out = {}
    for alias in replica_aliases():
        status = replica_status(alias, max_age=1.0)
        out[alias] = {
            "status": "unavailable" if status.error else "ok",
            "lag_seconds": None if status.lag_seconds is None else round(status.lag_seconds, 3),
            "error": status.error,
        }
    return out


def replica_queryset(queryset, request):
    """``queryset`` on a caught-up replica for a GET/HEAD of the request's merchant; else unchanged."""
    if request.method not in ("GET", "HEAD") or not replica_aliases():
        return queryset
    return queryset.using(read_alias(getattr(getattr(request, "user", None), "merchant_id", None)))


class WritePositionMiddleware:
    """After an unsafe request has been answered (its transaction committed), record the primary's WAL
    position for its merchant, so that merchant's later reads, on any instance, skip replicas that have
    not replayed it. Does nothing without replicas."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 500 and replica_aliases():
            record_write(getattr(getattr(request, "user", None), "merchant_id", None))
        return response
