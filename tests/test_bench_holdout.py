"""bench/holdout.py's pure parts: configurations, CPU accounting and the table (the load run itself
needs wrk and the whole stack: `make bench-holdout`)."""

import argparse
import os
from decimal import Decimal

import pytest

from bench.holdout import LUA, SCENARIOS, WorkerModel, cpu_delta, cpu_seconds, spread, table


def test_configurations_parse_into_gunicorn_conf_overrides():
    gthread = WorkerModel.parse("gthread:4x16")
    assert gthread.env() == {"GUNICORN_WORKER_CLASS": "gthread", "GUNICORN_WORKERS": "4", "GUNICORN_THREADS": "16"}
    assert WorkerModel.parse("gevent:2").env() == {"GUNICORN_WORKER_CLASS": "gevent", "GUNICORN_WORKERS": "2"}
    assert WorkerModel.parse("gevent:2/12").env()["GUNICORN_DB_POOL_SIZE"] == "12"
    assert WorkerModel.parse("gthread:4x32/12").env()["GUNICORN_DB_POOL_SIZE"] == "12"
    for bad in ("sync:4", "gthread:4", "gevent:2x8", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            WorkerModel.parse(bad)


def test_cpu_delta_counts_a_process_that_appeared_from_zero():
    before = {10: 1.5, 11: 2.0}
    after = {10: 2.0, 11: 2.25, 12: 0.5}  # 12: a PostgreSQL backend opened during the run
    assert cpu_delta(before, after) == pytest.approx(0.5 + 0.25 + 0.5)


def test_cpu_seconds_reads_this_process_and_none_for_a_missing_one():
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(2**22 + 12345) is None


def test_the_table_gives_the_median_and_the_spread_of_the_rounds():
    model = WorkerModel.parse("gthread:4x16")
    cpu = {"web": 7.0, "postgresql": 1.5, "emulator": 1.0, "redis": 0.25, "all": 9.75, "wrk": 0.1}
    rounds = [
        {
            model.label: {
                "post": {
                    "rps": rps,
                    "ratio": rps / 1000,
                    "p50_ms": 80.0,
                    "p95_ms": 150.0,
                    "errors": 0,
                    "cpu_ms_per_request": cpu,
                }
            }
        }
        for rps in (100.0, 120.0, 110.0)
    ]
    post = [s for s in SCENARIOS if s.name == "post"]
    text = table([model], post, rounds)
    assert "| POST /payments, processor 0 ms | gthread:4x16 | 110.0 (100.0-120.0) | 0.110 (0.100-0.120) |" in text
    assert "9.75 (9.75-9.75) = 7.00 + 1.50 + 1.00 + 0.25" in text
    assert spread([]) == "-" and spread([3.0]) == "3.0"


def test_every_scenario_names_a_latency_and_floors_that_exist():
    names = {scenario.name for scenario in SCENARIOS}
    for scenario in SCENARIOS:
        assert isinstance(scenario.latency_ms, int), scenario
        assert scenario.floor is None or scenario.floor in names, scenario
        assert scenario.django_floor is None or scenario.django_floor in names, scenario
        assert (LUA / scenario.script).is_file(), scenario


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_post_io_floor_does_a_posts_writes_and_charges_at_the_processor(anet_sandbox, merchant):
    """The floor the POST is divided by does the real work: the claim, the pending row and its log, an
    approved charge at the emulator with a fresh reference each time, the captured row, its event and
    the claim completed with the response it gave."""
    from django.db import connection

    from bench import holdout_wsgi

    holdout_wsgi._processor.cache_clear()  # built from the settings the emulator fixture set
    with connection.cursor() as cursor:
        for ddl in (holdout_wsgi.WRITE_TABLE_DDL, *holdout_wsgi.POST_TABLES_DDL):
            cursor.execute(ddl)
    try:
        first = holdout_wsgi._floor_post(str(merchant.pk))
        second = holdout_wsgi._floor_post(str(merchant.pk))
        assert first["status"] == second["status"] == "captured"
        charged = list(anet_sandbox.state.transactions.values())
        assert len(charged) == 2 and {t.amount for t in charged} == {Decimal("25.99")}
        assert len({t.invoice_number for t in charged}) == 2  # a fresh reference each time: no duplicate
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM bench_floor_write WHERE id IN (%s, %s)", [first["id"], second["id"]])
            assert [row[0] for row in cursor.fetchall()] == ["captured", "captured"]
            cursor.execute("SELECT kind FROM bench_floor_post_log WHERE payment_id = %s ORDER BY id", [first["id"]])
            assert [row[0] for row in cursor.fetchall()] == ["charge.request", "charge.response", "status_change"]
            cursor.execute("SELECT count(*) FROM bench_floor_post_event WHERE merchant_id = %s", [str(merchant.pk)])
            assert cursor.fetchone()[0] == 2
            cursor.execute("SELECT status, body FROM bench_floor_post_claim ORDER BY id")
            claims = cursor.fetchall()
            assert [status for status, _ in claims] == ["completed", "completed"]
            assert '"status": "captured"' in claims[0][1]
    finally:
        holdout_wsgi._processor.cache_clear()
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TABLE IF EXISTS bench_floor_write, bench_floor_post_claim, bench_floor_post_log, "
                "bench_floor_post_event"
            )
