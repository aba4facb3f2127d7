"""Every SQL statement and Redis round trip of one ``POST /payments``, pinned (issue #18: fewer round
trips on POST), so the count cannot silently grow. ``test_payments_queries`` pins the statements on
the payment's own tables; this one pins all of them, audit, savepoints and the rest included."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.tests.factories import create

pytestmark = [pytest.mark.redis, pytest.mark.postgres]  # the round trips of PostgreSQL (SQLite: one by one)


def _kind(sql: str) -> str:
    """One round trip: its statements' kinds, joined with `` + `` (``core.sqlwrite.execute_together``
    sends several as one query, separated by ``;\n``)."""
    return " + ".join(_statement_kind(part) for part in sql.split(";\n"))


def _statement_kind(sql: str) -> str:
    """``INSERT payments_payment``, ``SAVEPOINT``...: the statement's verb and first table; for a
    ``WITH`` the writes it makes, in order (``WITH INSERT a, INSERT b``)."""
    words = sql.replace('"', "").split()
    verb = words[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    if verb == "WITH":
        upper = [w.upper() for w in words]
        writes = [
            f"INSERT {words[i + 1]}"
            for i, w in enumerate(upper)
            if w == "INTO" and upper[i - 1].lstrip("(") == "INSERT"
        ]
        return "WITH " + ", ".join(writes)
    for marker in ("INTO", "FROM", "UPDATE"):
        if marker in (w.upper() for w in words):
            index = [w.upper() for w in words].index(marker)
            if marker == "UPDATE":
                return f"UPDATE {words[index + 1]}"
            return f"{verb} {words[index + 1]}"
    return verb


@pytest.mark.django_db(transaction=True)  # real commits, as a served request has them
def test_a_post_costs_a_fixed_list_of_statements_and_redis_round_trips(api_client, anet_sandbox, request):
    api_client.get("/api/v1/payments?limit=1")  # auth snapshot and usage marker cached first
    create(api_client, key="trips-0", amount="11.00")  # the merchant's (empty) webhook endpoint list cached
    sent = request.getfixturevalue("redis_commands")
    with CaptureQueriesContext(connection) as queries:
        response = create(api_client, key="trips-1", amount="12.00", customer_email="")
    assert response.status_code == 201, response.content
    kinds = [_kind(q["sql"]) for q in queries.captured_queries]
    assert kinds == EXPECTED_STATEMENTS, kinds
    assert len(sent) == EXPECTED_REDIS_ROUND_TRIPS, sent


EXPECTED_STATEMENTS = [
    # The Idempotency-Key's claim: one INSERT that commits by itself (core.idempotency).
    "INSERT payments_idempotencyrecord",
    # The intent, committed before the processor is called (no lock held across the HTTP call): the
    # payment and its charge.request log in one query, which PostgreSQL runs as one transaction.
    "INSERT payments_payment + INSERT payments_paymentevent",
    # The outcome: one conditional UPDATE (the row still pending and untouched since the intent, no
    # SELECT ... FOR UPDATE first), the payment.* event for the outbox with its sequence number (one
    # statement), both log entries and the key's completion in one query.
    "BEGIN",
    "UPDATE payments_payment",
    "WITH INSERT webhooks_eventsequence, INSERT webhooks_event",
    "INSERT payments_paymentevent + UPDATE payments_idempotencyrecord",
    "COMMIT",
    # The audit row (synchronous under the test settings, batched by default): one autocommitted INSERT.
    "INSERT audit_auditlog",
]
# The rate limits (one script), the shared circuit breaker's state read before the processor call
# (one MGET; a success with nothing counted writes nothing: payments.gateways.circuit), the merchant's
# webhook endpoints (cached), and the payment's cache entry dropped with its lease once, after the
# outcome's commit.
EXPECTED_REDIS_ROUND_TRIPS = 4


@pytest.mark.django_db(transaction=True)
def test_the_outcome_update_writes_only_the_columns_the_outcome_changed(api_client, anet_sandbox):
    with CaptureQueriesContext(connection) as queries:
        response = create(api_client, key="cols-1", amount="12.00", description="kept", metadata={"order": "7"})
    assert response.status_code == 201, response.content
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "payments_payment"')]
    written = set(re.findall(r'"(\w+)" = ', update.split(" WHERE ")[0]))
    assert written == {
        "status",
        "updated_at",
        "processed_at",
        "authorized_amount",
        "captured_amount",
        "processor_response_code",
        "processor_response_message",
        "processor_reason_code",
        "processor_transaction_id",
        "auth_code",
        "avs_result",
        "cvv_result",
    }, written
    data = response.json()["data"]
    assert (data["description"], data["metadata"], data["amount"]) == ("kept", {"order": "7"}, "12.00")
