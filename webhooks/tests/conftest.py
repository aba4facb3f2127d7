"""Fixtures of the webhooks tests: a real local HTTP receiver, endpoints, events."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.receivers import running_receiver
from webhooks import services


@pytest.fixture
def receiver():
    """A local receiver recording every request, answering from its script (tests/receivers.py)."""
    with running_receiver("/hooks/easypay") as recv:
        yield recv


@pytest.fixture
def endpoint_for(db):
    """``endpoint_for(merchant, url, events=["*"])`` -> (endpoint, secret)."""

    def _make(merchant, url, events=None, **fields):
        created = services.endpoint_create(merchant=merchant, url=url, events=events or ["*"], **fields)
        return created.endpoint, created.secret

    return _make


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """``emit(merchant, type="payment.captured", data=...)`` records an event the way services do
    (inside a transaction) and runs the on-commit fan-out, as a real commit would."""

    def _emit(merchant, event_type="payment.captured", data=None):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return services.event_record(
                merchant_id=merchant.pk,
                event_type=event_type,
                data=data or {"id": "pay_test", "amount": "25.00", "currency": "USD", "status": "captured"},
            )

    return _emit
