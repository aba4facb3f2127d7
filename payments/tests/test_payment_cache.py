"""The GET /payments/{id} cache never keeps a copy older than a committed write (leases), on Redis
(the configured cache under CI) and on the in-process cache (make run)."""

from __future__ import annotations

import uuid

import pytest

from payments.cache import payment_cache_fill, payment_cache_invalidate, payment_cache_read

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["configured", "in-process"])
def backend(request, settings):
    if request.param == "in-process":
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "payment-cache-test"}
        }
    return request.param


@pytest.fixture
def ids():
    return {"merchant_id": uuid.uuid4(), "payment_id": uuid.uuid4()}


def test_a_miss_takes_a_lease_and_the_fill_is_then_served(backend, ids):
    data, lease = payment_cache_read(**ids)
    assert data is None and lease

    assert payment_cache_fill(**ids, data={"status": "captured", "amount": "10.00"}, lease=lease) is True
    assert payment_cache_read(**ids) == ({"status": "captured", "amount": "10.00"}, None)
    # Another merchant never sees it.
    assert payment_cache_read(merchant_id=uuid.uuid4(), payment_id=ids["payment_id"])[0] is None


def test_a_write_committed_between_the_read_and_the_fill_wins(backend, ids):
    _, lease = payment_cache_read(**ids)  # reader: miss, then loads the row (still "captured")
    payment_cache_invalidate(**ids)  # a refund commits meanwhile and invalidates

    assert payment_cache_fill(**ids, data={"status": "captured"}, lease=lease) is False
    # The stale row was not cached: the next reader misses, and caches the current row.
    data, lease = payment_cache_read(**ids)
    assert data is None and lease
    assert payment_cache_fill(**ids, data={"status": "partially_refunded"}, lease=lease) is True
    assert payment_cache_read(**ids)[0] == {"status": "partially_refunded"}


def test_concurrent_misses_fill_once_and_a_stale_lease_cannot_fill(backend, ids):
    _, first = payment_cache_read(**ids)
    _, second = payment_cache_read(**ids)
    assert first and second is None  # the second reader reads the database and does not fill
    assert payment_cache_fill(**ids, data={"status": "captured"}, lease=second) is False
    assert payment_cache_fill(**ids, data={"status": "captured"}, lease="forged") is False
    assert payment_cache_fill(**ids, data={"status": "captured"}, lease=first) is True
    assert payment_cache_fill(**ids, data={"status": "voided"}, lease=first) is False  # a lease fills once


def test_the_api_does_not_cache_a_row_read_before_a_concurrent_refund(api_client, captured, monkeypatch):
    """A refund commits while GET is between its database read and its cache fill: the next GET shows
    the refund, not the row the first GET read."""
    from payments.api import views

    pid = captured["id"]
    payment_cache_invalidate(merchant_id=_merchant_id(pid), payment_id=pid)
    real_payment_data = views.payment_payload
    raced = []

    def read_then_refund(payment):
        data = real_payment_data(payment)  # the row as this GET read it
        if not raced:
            raced.append(True)
            assert post(api_client, pid, "refund", {"amount": "1.00"}).status_code == 200
        return data

    monkeypatch.setattr(views, "payment_payload", read_then_refund)
    first = api_client.get(f"/api/v1/payments/{pid}").json()["data"]
    assert first["refunded_amount"] == "0.00"  # what it read before the refund
    monkeypatch.setattr(views, "payment_payload", real_payment_data)
    second = api_client.get(f"/api/v1/payments/{pid}").json()["data"]
    assert (second["refunded_amount"], second["status"]) == ("1.00", "partially_refunded")


def post(client, payment_id, action, data):
    return client.post(f"/api/v1/payments/{payment_id}/{action}", data, format="json")


def _merchant_id(payment_id):
    from payments.models import Payment

    return Payment.objects.values_list("merchant_id", flat=True).get(pk=payment_id)
