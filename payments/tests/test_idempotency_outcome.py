"""POST /payments completes its Idempotency-Key claim inside the outcome transaction (no extra UPDATE)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response

from core import idempotency
from core.models import IdempotencyRecord
from payments.models import Payment
from payments.tests.factories import charges, create

pytestmark = pytest.mark.django_db


def _record_updates(queries) -> list[str]:
    # A query may carry several statements (core.sqlwrite.execute_together joins them with ";\n").
    statements = (part for q in queries for part in q["sql"].split(";\n"))
    return [sql for sql in statements if sql.startswith('UPDATE "payments_idempotencyrecord"')]


def _strip(response) -> bytes:
    return response.content.split(b'"request_id"')[0]


@pytest.mark.django_db(transaction=True)  # real commits: the claim counts as completed once its outcome commits
def test_created_payment_completes_its_key_in_the_outcome_transaction(api_client, sandbox):
    with CaptureQueriesContext(connection) as ctx:
        first = create(api_client, key="fold-1")
    assert first.status_code == 201
    assert len(_record_updates(ctx.captured_queries)) == 1
    record = IdempotencyRecord.objects.get(key="fold-1")
    payment = Payment.objects.get()
    assert record.status == IdempotencyRecord.Status.COMPLETED
    assert record.response_status == 201
    assert record.resource_id == str(payment.pk)
    assert json.loads(record.response_body) == first.json()["data"]

    replay = create(api_client, key="fold-1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert _strip(replay) == _strip(first)
    assert len(charges(sandbox)) == 1


def test_uncommitted_outcome_is_not_taken_as_stored(api_client, sandbox):
    # Without the commit (the test's transaction never commits) the decorator stores the response itself.
    with CaptureQueriesContext(connection) as ctx:
        first = create(api_client, key="fold-2")
    assert first.status_code == 201
    assert len(_record_updates(ctx.captured_queries)) == 2
    assert IdempotencyRecord.objects.get(key="fold-2").status == IdempotencyRecord.Status.COMPLETED
    assert _strip(create(api_client, key="fold-2")) == _strip(first)


@pytest.mark.django_db(transaction=True)
def test_declined_payment_is_stored_by_the_decorator_and_replayed(api_client, sandbox):
    with CaptureQueriesContext(connection) as ctx:
        first = create(api_client, key="fold-3", card_token="tok_declined")
    assert first.status_code == 402
    assert len(_record_updates(ctx.captured_queries)) == 1
    replay = create(api_client, key="fold-3", card_token="tok_declined")
    assert replay.status_code == 402
    assert _strip(replay) == _strip(first)


def _served(merchant, *, predicted, actual, django_capture_on_commit_callbacks):
    class View:
        def handle_exception(self, exc):
            raise exc

        @idempotency.idempotent
        def create(self, request):
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                idempotency.idempotency_complete_with_outcome(
                    claim=request.idempotency_claim, status=201, body=predicted
                )
            return Response(actual, status=201)

    request = SimpleNamespace(
        headers={idempotency.HEADER: "fold-unit"},
        data={"a": 1},
        method="POST",
        path="/api/v1/payments",
        user=SimpleNamespace(merchant_id=merchant.pk),
    )
    View().create(request)
    return IdempotencyRecord.objects.get(key="fold-unit")


def test_the_real_response_is_stored_when_the_prediction_differs(merchant, django_capture_on_commit_callbacks):
    record = _served(
        merchant,
        predicted={"id": "pay_1", "status": "captured"},
        actual={"id": "pay_1", "status": "authorized"},
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert json.loads(record.response_body) == {"id": "pay_1", "status": "authorized"}
    assert record.status == IdempotencyRecord.Status.COMPLETED


def test_outside_a_served_request_nothing_is_completed(merchant):
    with transaction.atomic():
        idempotency.idempotency_complete_with_outcome(claim=None, status=201, body={"id": "x"})
    assert not IdempotencyRecord.objects.exists()
