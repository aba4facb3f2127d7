"""gunicorn defaults for EasyPay (`gunicorn config.wsgi:application` picks this file up).

gevent workers, one per CPU, each serving up to 1,000 requests at once as greenlets and sharing a
pool of 16 PostgreSQL connections. A payment spends most of its time waiting on the processor; a
greenlet waiting costs a few KiB and no interpreter lock, and the payment hands its database
connection back to the pool before that call (payments.services.common.connections_release), so a
slow processor holds neither threads nor connections: hundreds of calls in flight need 16 connections
per worker, and workers x 16 (+ Celery) stays far under max_connections.

Chosen with `make bench-holdout` (bench/holdout.py: the configurations alternated in one session,
CPU per request read per process; figures in bench/README.md, "Held-out style run and the
concurrency model"), 2026-12-01 on the 2-vCPU bench machine, gevent x 2 against gthread 4 x 16 (the
previous default), two paired sessions:
  GET /payments/{id}  1,365 / 1,269 req/s against 1,029 / 1,008 (web CPU 1.22 / 1.37 ms against 1.51 / 1.77)
  GET /payments?limit=20  353 against 314 req/s
  POST /payments (processor at 0 ms)  118 / 142 against 134 / 122 req/s, CPU per POST about equal
  POST with a 300 ms processor, 128 clients  101 / 106 against 106 / 101 req/s, p95 2.3 / 1.9 s against
  2.7 / 2.6 s; gevent x 3 reached 0.93 of its 0 ms figure
gthread pays for 16 threads per worker contending for the interpreter lock on 2 cores, and caps the
payments in flight at workers x threads. gevent used to lose (every request held a pooled connection
across the processor call, and calls past the 16th opened a new HTTP connection each), and fewer
threads per gthread worker (4 x 4, 2 x 8, 4 x 8) left too few slots for a 300 ms processor.

Override with GUNICORN_WORKER_CLASS (gevent | gthread), GUNICORN_WORKERS (default: the CPUs for
gevent, 4 for gthread), GUNICORN_THREADS (gthread, 16), GUNICORN_WORKER_CONNECTIONS (gevent, 1,000)
and GUNICORN_DB_POOL_SIZE (gevent: 16; gthread: 0, a persistent connection per thread, unless set).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
workers = int(os.environ.get("GUNICORN_WORKERS") or (len(os.sched_getaffinity(0)) if worker_class == "gevent" else 4))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# gevent: requests one worker accepts at once (each a greenlet, a few KiB; gthread ignores it).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
# PostgreSQL connections per worker process, shared by its threads or greenlets (see _pool_connections):
# always for gevent (16 unless set), for gthread when set (0: a persistent connection per thread).
_db_pool_size_set = os.environ.get("GUNICORN_DB_POOL_SIZE")
db_pool_size = int(_db_pool_size_set or ("16" if worker_class == "gevent" else "0"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Each worker listens on its own SO_REUSEPORT socket, and the kernel spreads new connections over them.
# On one shared socket, keep-alive clients stuck to whichever worker accepted first: the list (5.7 ms of
# CPU a request) ran at 177 req/s with the machine 41 % idle, one worker holding most connections.
reuse_port = True
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

    # Decided by the worker actually running: `--worker-class gthread` on the command line overrides
    # this file's default without changing ``worker_class`` here.
    is_gevent = type(worker).__module__ == "gunicorn.workers.ggevent"
    size = int(_db_pool_size_set) if _db_pool_size_set else (16 if is_gevent else 0)
    if size > 0:
        _pool_connections(size)
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
            # Opened as the load asks for them, up to ``size`` (several web instances and replicas
            # would otherwise hold workers x size connections each from the start).
            alias.setdefault("OPTIONS", {})["pool"] = {"min_size": min(size, 4), "max_size": size, "timeout": 5}
