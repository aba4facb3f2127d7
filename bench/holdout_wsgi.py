"""The held-out run's WSGI entry (``bench/holdout.py``): two floors in front of the real application.

* ``GET /__floor?merchant=<uuid>``: one primary-key read (``bench/floor_wsgi.py``'s floor);
* ``POST /__floor_write?merchant=<uuid>``: one INSERT ... RETURNING and one UPDATE of that row, each its
  own autocommit transaction (two commits, two WAL flushes), the least a payment write can cost;
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

from django.db import close_old_connections, connection

from bench.floor_wsgi import application as floor_application

WRITE_PATH = "/__floor_write"
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
    row = raw.execute(
        "INSERT INTO bench_floor_write (merchant_id, amount, status) VALUES (%s, %s, 'pending') RETURNING id",
        (merchant_id, 1000),
    ).fetchone()
    raw.execute("UPDATE bench_floor_write SET status = 'captured', updated_at = now() WHERE id = %s", (row[0],))
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


def _pooled() -> bool:
    return "pool" in connection.settings_dict.get("OPTIONS", {})


def application(environ, start_response):
    path = environ.get("PATH_INFO")
    if path not in (WRITE_PATH, "/__floor"):
        return floor_application(environ, start_response)
    try:
        return (_write if path == WRITE_PATH else floor_application)(environ, start_response)
    finally:
        if _pooled():
            close_old_connections()
