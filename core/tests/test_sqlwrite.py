"""``core.sqlwrite``: the rows it writes are the rows the ORM writes, several statements go all or none,
and a failure inside a caller's transaction behaves as documented (with or without a savepoint)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import sqlwrite
from core.models import IdempotencyRecord
from payments.models import Payment, PaymentEvent, PaymentStatus

pytestmark = pytest.mark.django_db

# Text a merchant may send: any code point PostgreSQL stores (no NUL, no lone surrogate).
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def _payment(merchant, **fields) -> Payment:
    return Payment(merchant=merchant, amount=Decimal("10.00"), currency="USD", status=PaymentStatus.PENDING, **fields)


def _stored(payment: Payment) -> dict:
    row = Payment.objects.get(pk=payment.pk)
    skip = ("id", "external_id", "reference")  # each row's own
    return {f.attname: getattr(row, f.attname) for f in Payment._meta.concrete_fields if f.attname not in skip}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    description=text,
    customer_name=text,
    metadata=st.dictionaries(text, json_values, max_size=4),
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2),
)
def test_an_inserted_row_reads_back_as_the_orm_would_have_stored_it(
    merchant, description, customer_name, metadata, amount
):
    fields = {"description": description, "customer_name": customer_name, "metadata": metadata, "amount": amount}
    by_orm = Payment.objects.create(merchant=merchant, currency="USD", status=PaymentStatus.PENDING, **fields)
    ours = _payment(merchant, **{k: v for k, v in fields.items() if k != "amount"})
    ours.amount = amount
    sqlwrite.execute(sqlwrite.insert_statement([ours]))
    sqlwrite.mark_stored([ours], Payment)
    assert not ours._state.adding
    assert ours.created_at is not None and ours.updated_at is not None  # auto_now(_add) ran on the instance
    expected, got = _stored(by_orm), _stored(ours)
    for stamp in ("created_at", "updated_at"):
        assert abs(expected.pop(stamp) - got.pop(stamp)) < timedelta(seconds=30)
    assert got == expected
    assert Payment.objects.get(pk=ours.pk).created_at == ours.created_at


def test_insert_row_reads_an_auto_numbered_key_back(merchant):
    now = timezone.now()
    record = IdempotencyRecord(merchant=merchant, key="k", fingerprint="f", expires_at=now + timedelta(hours=1))
    sqlwrite.insert_row(record)
    assert record.pk is not None
    assert IdempotencyRecord.objects.get(pk=record.pk).key == "k"


@pytest.mark.django_db(transaction=True)
def test_statements_sent_together_are_all_or_none_outside_a_transaction(merchant):
    first = _payment(merchant, external_id="dup")
    sqlwrite.execute(sqlwrite.insert_statement([first]))
    second = _payment(merchant, external_id="fresh")
    clash = _payment(merchant, external_id="dup")  # (merchant, external_id) is unique
    with CaptureQueriesContext(connection) as queries, pytest.raises(IntegrityError):
        sqlwrite.execute_together([sqlwrite.insert_statement([second]), sqlwrite.insert_statement([clash])])
    assert not Payment.objects.filter(external_id="fresh").exists()  # the first of the pair went too
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1  # one round trip, no BEGIN/COMMIT of its own
    log = PaymentEvent(payment=second, kind="charge.request", to_status=PaymentStatus.PENDING)
    sqlwrite.execute_together([sqlwrite.insert_statement([second]), sqlwrite.insert_statement([log])])
    assert PaymentEvent.objects.get(payment_id=second.pk).kind == "charge.request"


def test_a_savepoint_keeps_the_callers_transaction_usable_after_a_failure(merchant):
    sqlwrite.execute(sqlwrite.insert_statement([_payment(merchant, external_id="dup")]))
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            sqlwrite.execute_together(
                [sqlwrite.insert_statement([_payment(merchant, external_id="dup")])], savepoint=True
            )
        assert Payment.objects.filter(external_id="dup").count() == 1  # still usable
    with pytest.raises(IntegrityError), transaction.atomic():
        sqlwrite.execute_together([sqlwrite.insert_statement([_payment(merchant, external_id="dup")])])
        Payment.objects.count()  # without one, the transaction is aborted (as after an ORM statement)


def test_insert_row_with_a_savepoint_keeps_the_callers_transaction_usable(merchant):
    expires = timezone.now() + timedelta(hours=1)
    sqlwrite.insert_row(IdempotencyRecord(merchant=merchant, key="k", fingerprint="f", expires_at=expires))
    with transaction.atomic():
        clash = IdempotencyRecord(merchant=merchant, key="k", fingerprint="g", expires_at=expires)
        with pytest.raises(IntegrityError):
            sqlwrite.insert_row(clash, savepoint=True)
        assert clash.pk is None and clash._state.adding  # not taken for a stored row
        assert IdempotencyRecord.objects.get(key="k").fingerprint == "f"  # still usable
        sqlwrite.insert_row(IdempotencyRecord(merchant=merchant, key="k2", fingerprint="f", expires_at=expires))
    assert IdempotencyRecord.objects.filter(merchant=merchant).count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        sqlwrite.insert_row(IdempotencyRecord(merchant=merchant, key="k", fingerprint="h", expires_at=expires))
        IdempotencyRecord.objects.count()  # without one, the transaction is aborted


def test_a_conditional_update_writes_only_a_matching_row(merchant):
    payment = Payment.objects.create(merchant=merchant, amount=Decimal("5.00"), currency="USD")
    stale = payment.updated_at - timedelta(seconds=1)
    missed = sqlwrite.update_statement(
        Payment, where={"id": payment.pk, "updated_at": stale}, values={"status": PaymentStatus.CAPTURED}
    )
    assert sqlwrite.execute(missed) == 0
    hit = sqlwrite.update_statement(
        Payment,
        where={"id": payment.pk, "updated_at": payment.updated_at, "subscription_id": None},
        values={"status": PaymentStatus.CAPTURED, "captured_amount": Decimal("5.00"), "metadata": {"a": "é"}},
    )
    assert sqlwrite.execute(hit) == 1
    payment.refresh_from_db()
    assert (payment.status, payment.captured_amount, payment.metadata) == ("captured", Decimal("5.00"), {"a": "é"})


def test_expressions_and_empty_statements_are_refused(merchant):
    with pytest.raises(TypeError, match="expression"):
        sqlwrite.update_statement(Payment, where={"id": 1}, values={"amount": F("amount") + 1})
    with pytest.raises(ValueError):
        sqlwrite.insert_statement([])
    with pytest.raises(ValueError):
        sqlwrite.update_statement(Payment, where={}, values={"status": "captured"})
    with pytest.raises(ValueError, match="not columns"):
        sqlwrite.insert_select_statement(_payment(merchant), computed={"nope": "1"})
