"""gunicorn defaults for EasyPay (`gunicorn config.wsgi:application` picks this file up).

gthread workers: a payment request spends most of its time waiting on the processor, so threads
keep a worker busy while one request waits. Override with GUNICORN_WORKERS / GUNICORN_THREADS.

4 x 16 = 64 requests in flight: with a 300 ms processor, 150 payments/s need 45+ (Little's law).
Four processes of 16 threads beat two of 32 on this 2-core box because fewer threads fight over
each interpreter lock (same run conditions: GET by id 782 vs 587 req/s, POST 108 vs 77 req/s).
Each thread keeps its own PostgreSQL connection (CONN_MAX_AGE), so workers x threads (+ Celery)
must stay under max_connections (100 by default).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
worker_class = "gthread"
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

    gc.collect()
    gc.freeze()
