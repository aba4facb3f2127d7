"""Read replicas (core/replicas.py), the single-beat lock (core/beat.py) and the Sentinel settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory

from core import replicas
from core.beat import BeatLock
from core.replicas import ReplicaStatus, parse_lsn, read_alias

ROOT = Path(__file__).resolve().parents[2]


def _skipped(replica: str, reason: str) -> float:
    return replicas.REPLICA_SKIPPED.labels(replica=replica, reason=reason)._value.get()


@pytest.fixture
def one_replica(monkeypatch):
    """Pretend "replica1" exists; the test sets its status and the merchant's recorded position."""
    state = {"status": ReplicaStatus(100, 0.0, time.monotonic()), "minimum": 0, "asked": 0}
    monkeypatch.setattr(replicas, "replica_aliases", lambda: ["replica1"])

    def status(alias, max_age=None):
        state["asked"] += 1
        return state["status"]

    monkeypatch.setattr(replicas, "replica_status", status)
    monkeypatch.setattr(replicas, "merchant_min_lsn", lambda merchant_id: state["minimum"])
    return state


def test_parse_lsn_orders_positions():
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
    assert parse_lsn(None) is None


def test_without_replicas_everything_reads_the_primary():
    assert replicas.replica_aliases() == []
    assert read_alias("any-merchant") == "default"


def test_a_caught_up_replica_serves_the_read(one_replica):
    one_replica["minimum"] = 90
    assert read_alias("m1") == "replica1"


def test_a_replica_behind_the_merchants_last_write_is_skipped(one_replica):
    one_replica["minimum"] = 101
    before = _skipped("replica1", "behind_merchant")
    assert read_alias("m1") == "default"
    assert _skipped("replica1", "behind_merchant") == before + 1
    assert one_replica["asked"] == 2  # the cached position was checked once more before giving up


def test_a_lagging_replica_is_skipped_even_for_a_merchant_without_writes(one_replica, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5
    one_replica["status"] = ReplicaStatus(100, 6.0, time.monotonic())
    before = _skipped("replica1", "lagging")
    assert read_alias("m1") == "default"
    assert _skipped("replica1", "lagging") == before + 1


def test_a_replica_that_is_down_is_skipped(one_replica):
    one_replica["status"] = ReplicaStatus(None, None, time.monotonic(), "OperationalError")
    before = _skipped("replica1", "down")
    assert read_alias("m1") == "default"
    assert _skipped("replica1", "down") == before + 1


def test_unknown_write_position_reads_the_primary(one_replica):
    one_replica["minimum"] = None  # Redis unreachable: a replica might miss the merchant's write
    assert read_alias("m1") == "default"


@pytest.mark.django_db
def test_inside_a_transaction_the_primary_is_used(one_replica):
    from django.db import transaction

    with transaction.atomic():
        assert read_alias("m1") == "default"


def test_replica_queryset_leaves_writes_on_the_primary(one_replica):
    from payments.models import Payment

    factory = RequestFactory()
    get, post = factory.get("/api/v1/payments"), factory.post("/api/v1/payments")
    assert replicas.replica_queryset(Payment.objects.all(), get).db == "replica1"
    assert replicas.replica_queryset(Payment.objects.all(), post).db == "default"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db
def test_record_write_stores_the_wal_position_and_never_lowers_it(monkeypatch):
    monkeypatch.setattr(replicas, "replica_aliases", lambda: ["replica1"])
    merchant = f"m-{time.monotonic_ns()}"
    client = replicas._redis()
    key = replicas._LSN_KEY.format(merchant=merchant)
    try:
        replicas.record_write(merchant)
        recorded = int(client.get(key))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            assert recorded <= parse_lsn(cursor.fetchone()[0])
        assert recorded > 0
        client.set(key, recorded + 10**9)
        replicas.record_write(merchant)  # an older position arriving late changes nothing
        assert int(client.get(key)) == recorded + 10**9
        assert replicas.merchant_min_lsn(merchant) >= recorded + 10**9
    finally:
        client.delete(key)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_only_one_beat_holds_the_lock():
    first, second = BeatLock(), BeatLock()
    try:
        assert first.held() is True
        assert second.held() is False
        assert first.held() is True  # still held on the same connection
        first.release()
        assert second.held() is True
        assert first.held() is False
    finally:
        first.release()
        second.release()


PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "cache": settings.CACHES["default"],
    "broker": settings.CELERY_BROKER_URL,
    "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "databases": sorted(settings.DATABASES),
    "replica": settings.DATABASES.get("replica2", {}).get("PORT"),
}))
"""


def test_sentinel_and_replica_settings_from_the_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/easypay",
        DATABASE_REPLICA_URLS="postgres://postgres@127.0.0.1:5433/easypay,postgres://postgres@127.0.0.1:5434/easypay",
        REDIS_URL="redis://127.0.0.1:6379/4",
        REDIS_SENTINELS="127.0.0.1:26379,127.0.0.1:26380",
        REDIS_SENTINEL_MASTER="pay",
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["databases"] == ["default", "replica1", "replica2"]
    assert probe["replica"] == 5434
    assert probe["cache"]["LOCATION"] == ["redis://pay/4?is_master=1"]  # the master only, never a replica
    assert probe["cache"]["OPTIONS"]["SENTINELS"] == [["127.0.0.1", 26379], ["127.0.0.1", 26380]]
    assert probe["broker"] == "sentinel://127.0.0.1:26379/4;sentinel://127.0.0.1:26380/4"
    assert probe["transport"]["master_name"] == "pay"
