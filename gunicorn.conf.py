"""gunicorn defaults for EasyPay (`gunicorn config.wsgi:application` picks this file up).

gthread workers, 4 x 16: a payment request spends most of its time waiting on the processor, so
threads keep a worker busy while one request waits. 64 requests in flight: with a 300 ms processor,
150 payments/s need 45+ (Little's law). Four processes of 16 threads beat two of 32 on a 2-core box
because fewer threads fight over each interpreter lock (GET by id 782 vs 587 req/s, POST 108 vs 77).
Each thread keeps its own PostgreSQL connection (CONN_MAX_AGE), so workers x threads (+ Celery)
must stay under max_connections (100 by default).

Measured against the alternatives with `make bench-holdout` (bench/holdout.py; figures and profiles
in bench/README.md, "Held-out style run and the concurrency model"): gthread 4 x 8, 2 x 8 and 4 x 4,
and gevent workers (2 processes, each sharing a psycopg pool of 16 connections). Fewer threads per
worker stayed within the run-to-run spread for GET and POST, and left too few slots for a 300 ms
processor (2 x 8 and 4 x 8 served 0-1.4 POST/s at 128 clients). gevent cost more CPU per request
than 4 x 16 in every scenario of two paired sessions (web CPU: the bare SELECT floor 1.6 / 1.06 vs
0.7 / 0.57 ms, GET by id 11.9 / 7.9 vs 8.8 / 4.2, POST 200 / 43 vs 40 / 29) and collapsed with the
300 ms processor (0-3 POST/s at 128 clients against 32 for 4 x 16), while serving a single
client at the same cost (a POST 23 vs 21-25 ms side by side): the extra is paid per concurrent
request. So gevent stays an option (GUNICORN_WORKER_CLASS=gevent, with `gevent` and `psycopg-pool`
from requirements-dev.txt), not the default.

Override with GUNICORN_WORKER_CLASS (gthread | gevent), GUNICORN_WORKERS, GUNICORN_THREADS (gthread),
GUNICORN_WORKER_CONNECTIONS and GUNICORN_DB_POOL_SIZE (gevent).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# gevent: requests one worker accepts at once (each a greenlet, a few KiB; gthread ignores it).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
# PostgreSQL connections per worker process, shared by its threads or greenlets (see _pool_connections):
# always for gevent (16 unless set), for gthread when set (0: a persistent connection per thread).
db_pool_size = int(os.environ.get("GUNICORN_DB_POOL_SIZE") or ("16" if worker_class == "gevent" else "0"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG")  # e.g. "-" for stdout


def worker_exit(server, worker):
    """Flush audit rows still buffered in this worker (imported late: Django is loaded by then)."""
    from audit.writer import gunicorn_worker_exit

    gunicorn_worker_exit(server, worker)


def post_worker_init(worker):
    """Move everything loaded at start-up (Django, DRF, the SDK's ~10^5 pyxb objects) out of the
    garbage collector's reach: it never frees them, yet every full collection walked them all,
    which cost about a tenth of a cached GET's CPU."""
    import gc

    if db_pool_size > 0:
        _pool_connections(db_pool_size)
    gc.collect()
    gc.freeze()


def _pool_connections(size):
    """The worker's threads (or greenlets) share a psycopg pool of ``size`` connections per process.

    Django keeps one connection per thread, and under gevent every greenlet is a thread: with
    CONN_MAX_AGE each of the hundreds of requests in flight would open (and keep) its own PostgreSQL
    connection. Django 5.2's pool (``OPTIONS["pool"]``, which needs CONN_MAX_AGE = 0) hands a
    connection to a request when it first touches the database and takes it back when the request
    ends, or earlier: a payment hands it back before calling the processor
    (``payments.services.common.connections_release``), so a slow processor does not hold
    connections. CONN_HEALTH_CHECKS becomes the pool's check on hand-out. Set here, in the worker:
    `manage.py` and Celery keep the settings as they are. The settings dicts are changed in place
    before the worker serves anything: Django's connection handler and every connection object hold
    these same dicts, and the pool itself is created on first use.
    """
    from django.conf import settings

    for alias in settings.DATABASES.values():
        if alias["ENGINE"].endswith("postgresql"):
            alias["CONN_MAX_AGE"] = 0
            alias.setdefault("OPTIONS", {})["pool"] = {"min_size": size, "max_size": size, "timeout": 10}
