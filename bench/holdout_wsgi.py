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
* ``POST /__floor_django_post`` (same ``?merchant=``): the I/O a ``POST /payments`` cannot do without,
  through bare Django and raw SQL: the Idempotency-Key claim (one autocommitted INSERT), the intent
  (the pending row and its log line, one query), the processor call (the product's own request bytes
  for a test card, a fresh reference each time, to the same emulator over a kept-alive connection),
  the outcome (BEGIN, the conditional UPDATE, the outbox event, the log line with the claim's
  completion, COMMIT) and three Redis round trips (the rate limit, the circuit breaker's state, the
  cache entry dropped after commit). No middleware, DRF, authentication, serializer, ORM or audit
  row (the product batches those). ``POST /payments`` divided by it is what the framework and the
  product's own Python cost; it divided by the INSERT + UPDATE floor is what the I/O costs;
* every other path: ``config.wsgi.application``.

Both floors skip Django's middleware, DRF, authentication and the ORM, but run through the same
gunicorn worker model and the same database connection handling as the application: with a connection
pool (gevent workers) each ends with ``close_old_connections()``, which is what Django runs at the end of
every request, so the connection goes back to the pool; a persistent per-thread connection (gthread)
stays open without that call, exactly as ``bench/floor_wsgi.py`` does on its own.
``bench_floor_write`` is created by ``bench/holdout.py``, not by a migration.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection, transaction
from django.http import JsonResponse

from bench.floor_wsgi import READ_SQL
from bench.floor_wsgi import application as floor_application

WRITE_PATH = "/__floor_write"
DJANGO_READ_PATH = "/__floor_django"
DJANGO_WRITE_PATH = "/__floor_django_write"
DJANGO_POST_PATH = "/__floor_django_post"
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


POST_TABLES_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_floor_post_claim ("
    " id bigserial PRIMARY KEY, key varchar(64) NOT NULL UNIQUE, status varchar(16) NOT NULL,"
    " body text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS bench_floor_post_log ("
    " id bigserial PRIMARY KEY, payment_id bigint NOT NULL, kind varchar(32) NOT NULL, data jsonb NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS bench_floor_post_event ("
    " id varchar(32) PRIMARY KEY, merchant_id uuid NOT NULL, type varchar(64) NOT NULL, data jsonb NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())",
)
_CLAIM_SQL = "INSERT INTO bench_floor_post_claim (key, status) VALUES (%s, 'in_progress') RETURNING id"
_INTENT_SQL = (
    "WITH p AS (INSERT INTO bench_floor_write (merchant_id, amount, status) VALUES (%s, %s, 'pending') RETURNING id)"
    " INSERT INTO bench_floor_post_log (payment_id, kind, data) SELECT id, 'charge.request', %s FROM p"
    " RETURNING payment_id"
)
_OUTCOME_UPDATE_SQL = (
    "UPDATE bench_floor_write SET status = 'captured', updated_at = now() WHERE id = %s AND status = 'pending'"
)
_EVENT_SQL = "INSERT INTO bench_floor_post_event (id, merchant_id, type, data) VALUES (%s, %s, 'payment.captured', %s)"
_LOG_AND_CLAIM_SQL = (
    "INSERT INTO bench_floor_post_log (payment_id, kind, data) VALUES (%s, 'charge.response', %s),"
    " (%s, 'status_change', '{}');\n"
    "UPDATE bench_floor_post_claim SET status = 'completed', body = %s WHERE id = %s"
)
_REFERENCE = "FLOORREF000000000000"  # 20 characters, as the product's references


@functools.cache
def _processor() -> tuple[Any, str, bytes]:
    """A connection pool to the processor, its URL and the product's request for a test card."""
    import urllib3
    from django.conf import settings

    from payments.gateways import get_gateway
    from payments.gateways.authorize_net import anet_xml

    gateway = get_gateway()
    source, _card = gateway._charge_source(  # the product's own request, built once
        card_token="tok_visa_4242",  # noqa: S106 (a test card token)
        customer_profile_id=None,
        payment_profile_id=None,
        is_test=True,
    )
    document = anet_xml.charge(
        gateway.credentials,
        capture=True,
        amount=Decimal("25.99"),
        currency="USD",
        reference=_REFERENCE,
        source=source,
        description=None,
        customer_id="floor",
        customer_email=None,
        bill_to_zip=None,
        duplicate_window=gateway.config.duplicate_window,
    )
    return urllib3.PoolManager(maxsize=128), settings.AUTHORIZE_NET_ENDPOINT, document


@functools.cache
def _redis():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _floor_post(merchant_id: str) -> dict:
    client = _redis()
    with client.pipeline(transaction=False) as pipe:  # the rate limit: one round trip
        pipe.incr(f"floor:rl:{merchant_id}")
        pipe.expire(f"floor:rl:{merchant_id}", 60)
        pipe.execute()
    reference = secrets.token_hex(10)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [secrets.token_hex(16)])
        claim_id = cursor.fetchone()[0]
        request_log = json.dumps({"amount": "25.99", "currency": "USD", "capture": True, "reference": reference})
        cursor.execute(_INTENT_SQL, [merchant_id, 2599, request_log])
        payment_id = cursor.fetchone()[0]
    close_old_connections()  # the pooled connection goes back during the processor call, as the product's
    client.get("floor:circuit")  # the shared circuit breaker's state
    pool, url, document = _processor()
    reply = pool.request(
        "POST", url, body=document.replace(_REFERENCE.encode(), reference.encode()), headers=_XML_HEADERS
    ).data
    approved = b"<resultCode>Ok</resultCode>" in reply
    data = {**_payment_shape(), "id": str(payment_id), "status": "captured" if approved else "failed"}
    text = json.dumps(data)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_OUTCOME_UPDATE_SQL, [payment_id])
        cursor.execute(_EVENT_SQL, ["evt_" + secrets.token_hex(12), merchant_id, text])
        cursor.execute(_LOG_AND_CLAIM_SQL, [payment_id, json.dumps({"approved": approved}), payment_id, text, claim_id])
    client.delete(f"floor:payment:{payment_id}")  # the cache entry, after commit
    return data


_XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


@functools.cache
def _payment_shape() -> dict[str, Any]:
    """The payment as the API shows it (the event's data and the response): the schema's own example."""
    from payments.api.views import PAYMENT_EXAMPLE

    return dict(PAYMENT_EXAMPLE)


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
    if request.path == DJANGO_POST_PATH:
        return JsonResponse({"data": _floor_post(merchant_id)}, status=201)
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
    if path in (DJANGO_READ_PATH, DJANGO_WRITE_PATH, DJANGO_POST_PATH):
        return _bare_django(environ, start_response)  # ends each request as Django does (pool included)
    if path not in (WRITE_PATH, "/__floor"):
        return floor_application(environ, start_response)
    try:
        return (_write if path == WRITE_PATH else floor_application)(environ, start_response)
    finally:
        if _pooled():
            close_old_connections()
