"""The benchmark's WSGI entry: a FLOOR path in front of the real Django application.

``GET /__floor?merchant=<uuid>`` bypasses every Django middleware, DRF, authentication and the ORM: it
reads one row by primary key straight through the thread's psycopg connection and answers a small JSON
body. It shows what this gunicorn, this Python and this PostgreSQL can do at best on this machine, so the
real endpoints can be reported as a fraction of it. Every other path goes to ``config.wsgi.application``.

The floor borrows the raw psycopg connection that Django keeps for the serving thread (``CONN_MAX_AGE``),
instead of opening a second one per thread: the gunicorn threads of both paths then cost one PostgreSQL
connection each, as they do in production, and the server's ``max_connections`` is not doubled.

Run only by ``bench/run.py``: ``gunicorn bench.floor_wsgi:application``.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs

from django.db import connection

from config.wsgi import application as django_application

FLOOR_PATH = "/__floor"
_JSON = [("Content-Type", "application/json")]
READ_SQL = "SELECT id, status FROM accounts_merchant WHERE id = %s"  # also the bare-Django floor's


def _floor_read(merchant_id: str | None) -> dict:
    connection.ensure_connection()
    raw = connection.connection  # the psycopg.Connection of this thread (autocommit on)
    if merchant_id:
        row = raw.execute(READ_SQL, (merchant_id,)).fetchone()
        return {"id": str(row[0]), "status": row[1]} if row else {"id": None}
    return {"value": raw.execute("SELECT 1").fetchone()[0]}


def application(environ, start_response):
    if environ.get("PATH_INFO") != FLOOR_PATH:
        return django_application(environ, start_response)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    merchant_id = (query.get("merchant") or [None])[0]
    try:
        if merchant_id:
            merchant_id = str(uuid.UUID(merchant_id))
        body = json.dumps({"data": _floor_read(merchant_id)}).encode()
        status = "200 OK"
    except ValueError:
        body, status = b'{"error": "bad merchant id"}', "400 Bad Request"
    except Exception as exc:  # a broken connection: drop it so the next request reconnects
        connection.close()
        body, status = json.dumps({"error": type(exc).__name__}).encode(), "503 Service Unavailable"
    start_response(status, [*_JSON, ("Content-Length", str(len(body)))])
    return [body]
