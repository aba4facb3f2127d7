"""gunicorn.conf.py: the worker model it defaults to and what a gevent worker changes in the settings."""

import copy
import gc
import os
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _conf(monkeypatch, **env):
    for name in ("GUNICORN_WORKER_CLASS", "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_DB_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def _postgres_databases(monkeypatch):
    """Fresh PostgreSQL aliases in place of settings.DATABASES (put back afterwards; the test
    database's own connections keep the dicts they were built from)."""
    from django.conf import settings

    databases = {
        "default": {"ENGINE": "django_prometheus.db.backends.postgresql", "CONN_MAX_AGE": 60, "OPTIONS": {}},
        "replica1": {"ENGINE": "django_prometheus.db.backends.postgresql", "CONN_MAX_AGE": 60, "OPTIONS": {}},
    }
    monkeypatch.setattr(settings, "DATABASES", databases)
    return databases


class _FakeGeventWorker:
    pass


_FakeGeventWorker.__module__ = "gunicorn.workers.ggevent"


def test_the_worker_model_is_chosen_by_the_environment(monkeypatch):
    default = _conf(monkeypatch)
    cpus = len(os.sched_getaffinity(0))
    assert (default["worker_class"], default["workers"], default["db_pool_size"]) == ("gevent", cpus, 16)
    assert default["worker_connections"] == 1000
    gevent = _conf(monkeypatch, GUNICORN_WORKER_CLASS="gevent", GUNICORN_WORKERS="2", GUNICORN_DB_POOL_SIZE="10")
    assert (gevent["worker_class"], gevent["workers"], gevent["db_pool_size"]) == ("gevent", 2, 10)
    gthread = _conf(monkeypatch, GUNICORN_WORKER_CLASS="gthread")
    assert (gthread["worker_class"], gthread["workers"], gthread["threads"], gthread["db_pool_size"]) == (
        "gthread",
        4,
        16,
        0,
    )


def test_a_gevent_worker_shares_a_connection_pool_per_process(monkeypatch):
    conf = _conf(monkeypatch, GUNICORN_DB_POOL_SIZE="10")
    databases = _postgres_databases(monkeypatch)
    try:
        conf["post_worker_init"](_FakeGeventWorker())
    finally:
        gc.unfreeze()
    for alias in databases.values():  # replicas too: every PostgreSQL alias
        assert alias["CONN_MAX_AGE"] == 0  # Django's pool refuses persistent connections
        assert alias["OPTIONS"]["pool"] == {"min_size": 4, "max_size": 10, "timeout": 5}


def test_a_gthread_worker_keeps_its_persistent_connections(monkeypatch):
    conf = _conf(monkeypatch, GUNICORN_WORKER_CLASS="gthread")
    databases = _postgres_databases(monkeypatch)
    before = copy.deepcopy(databases)
    try:
        conf["post_worker_init"](object())
    finally:
        gc.unfreeze()
    assert before == databases


def test_a_gthread_worker_shares_a_pool_when_one_is_sized(monkeypatch):
    conf = _conf(monkeypatch, GUNICORN_WORKER_CLASS="gthread", GUNICORN_DB_POOL_SIZE="8")
    assert (conf["worker_class"], conf["db_pool_size"]) == ("gthread", 8)
    databases = _postgres_databases(monkeypatch)
    try:
        conf["post_worker_init"](object())
    finally:
        gc.unfreeze()
    for alias in databases.values():
        assert alias["CONN_MAX_AGE"] == 0
        assert alias["OPTIONS"]["pool"] == {"min_size": 4, "max_size": 8, "timeout": 5}


def test_a_gthread_worker_chosen_on_the_command_line_keeps_its_persistent_connections(monkeypatch):
    """`gunicorn --worker-class gthread` with this file: its default (gevent) must not pool them."""
    conf = _conf(monkeypatch)
    assert conf["worker_class"] == "gevent"
    databases = _postgres_databases(monkeypatch)
    before = copy.deepcopy(databases)
    try:
        conf["post_worker_init"](object())  # not a gevent worker
    finally:
        gc.unfreeze()
    assert before == databases
