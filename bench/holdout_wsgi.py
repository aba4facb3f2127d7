"""The held-out run's WSGI entry (``bench/holdout.py``): two floors in front of the real application.

* ``GET /__floor?merchant=<uuid>``: one primary-key read (``bench/floor_wsgi.py``'s floor);
* ``POST /__floor_write?merchant=<uuid>``: one INSERT ... RETURNING and one UPDATE of that row, each its
  own autocommit transaction (two commits, two WAL flushes), the least a payment write can cost;
* ``GET /__floor_django`` and ``POST /__floor_django_write`` (same ``?merchant=``): the same read and
  the same two writes through bare Django: its WSGI handler, request and response objects and request
  signals (``close_old_connections`` at the end of each request), the ORM's connection handling and
  cursor wrapper, a ``JsonResponse``, but no middleware, no URL resolver, DRF or authentication. It is
  the floor the issue's targets are stated against ("bare Django, one SELECT"; "bare Django INSERT +
  UPDATE"), slower than the raw floors above;
* every other path: ``config.wsgi.application``.

Both floors skip Django's middleware, DRF, authentication and the ORM, but run through the same
gunicorn worker model and the same database connection handling as the application: with a connection
pool (gevent workers) each ends with ``close_old_connections()``, which is what Django runs at the end of
every request, so the connection goes back to the pool; a persistent per-thread connection (gthread)
stays open without that call, exactly as ``bench/floor_wsgi.py`` does on its own.
``bench_floor_write`` is created by ``bench/holdout.py``, not by a migration.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection
from django.http import JsonResponse

from bench.floor_wsgi import READ_SQL
from bench.floor_wsgi import application as floor_application

WRITE_PATH = "/__floor_write"
DJANGO_READ_PATH = "/__floor_django"
DJANGO_WRITE_PATH = "/__floor_django_write"
# The write floors' two statements (the raw floor and the bare-Django one run the same work).
INSERT_SQL = "INSERT INTO bench_floor_write (merchant_id, amount, status) VALUES (%s, %s, 'pending') RETURNING id"
UPDATE_SQL = "UPDATE bench_floor_write SET status = 'captured', updated_at = now() WHERE id = %s"
_JSON = [("Content-Type", "application/json")]
WRITE_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_floor_write ("
    " id bigserial PRIMARY KEY, merchant_id uuid NOT NULL, amount bigint NOT NULL,"
    " status varchar(16) NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now())"
)


def _floor_write(merchant_id: str) -> dict:
    connection.ensure_connection()
    raw = connection.connection  # autocommit: each statement is its own transaction
    row = raw.execute(INSERT_SQL, (merchant_id, 1000)).fetchone()
    raw.execute(UPDATE_SQL, (row[0],))
    return {"id": row[0], "status": "captured"}


def _write(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        merchant_id = str(uuid.UUID((query.get("merchant") or [""])[0]))
        body = json.dumps({"data": _floor_write(merchant_id)}).encode()
        status = "201 Created"
    except ValueError:
        body, status = b'{"error": "bad merchant id"}', "400 Bad Request"
    except Exception as exc:  # a broken connection: drop it so the next request reconnects
        connection.close()
        body, status = json.dumps({"error": type(exc).__name__}).encode(), "503 Service Unavailable"
    start_response(status, [*_JSON, ("Content-Length", str(len(body)))])
    return [body]


def _django_floor(request):
    try:
        merchant_id = str(uuid.UUID(request.GET.get("merchant", "")))
    except ValueError:
        return JsonResponse({"error": "bad merchant id"}, status=400)
    with connection.cursor() as cursor:
        if request.path == DJANGO_WRITE_PATH:
            cursor.execute(INSERT_SQL, [merchant_id, 1000])
            row_id = cursor.fetchone()[0]
            cursor.execute(UPDATE_SQL, [row_id])
            return JsonResponse({"data": {"id": row_id, "status": "captured"}}, status=201)
        cursor.execute(READ_SQL, [merchant_id])
        row = cursor.fetchone()
    return JsonResponse({"data": {"id": str(row[0]), "status": row[1]} if row else {"id": None}})


class _BareDjango(WSGIHandler):
    """Django's WSGI handler with no middleware and one view (the request still starts and finishes)."""

    def load_middleware(self, is_async=False):
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._middleware_chain = convert_exception_to_response(_django_floor)


_bare_django = _BareDjango()


def _pooled() -> bool:
    return "pool" in connection.settings_dict.get("OPTIONS", {})


def application(environ, start_response):
    path = environ.get("PATH_INFO")
    if path in (DJANGO_READ_PATH, DJANGO_WRITE_PATH):
        return _bare_django(environ, start_response)  # ends each request as Django does (pool included)
    if path not in (WRITE_PATH, "/__floor"):
        return floor_application(environ, start_response)
    try:
        return (_write if path == WRITE_PATH else floor_application)(environ, start_response)
    finally:
        if _pooled():
            close_old_connections()
