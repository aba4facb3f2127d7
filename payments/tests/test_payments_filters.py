"""ListFilterSet: a request naming no filter skips the form (the same answer, less work); one naming a
filter, even with an empty value, is validated and filtered as before."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.http import QueryDict

from payments.filters import PaymentFilter
from payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db


def _filterset(query: str, merchant) -> PaymentFilter:
    return PaymentFilter(data=QueryDict(query), queryset=Payment.objects.filter(merchant=merchant))


def _payments(merchant) -> None:
    for status in (PaymentStatus.CAPTURED, PaymentStatus.DECLINED):
        Payment.objects.create(merchant=merchant, amount=Decimal("5.00"), currency="USD", status=status)


def test_no_filter_named_skips_the_form_and_filters_nothing(merchant, other_merchant, monkeypatch):
    _payments(merchant)
    _payments(other_merchant)
    filterset = _filterset("limit=20&cursor=abc", merchant)
    monkeypatch.setattr(type(filterset), "form", property(lambda self: pytest.fail("form built")))
    assert filterset.is_valid()
    assert sorted(filterset.qs.values_list("status", flat=True)) == ["captured", "declined"]
    assert not filterset.qs.filter(merchant=other_merchant).exists()  # the view's queryset, untouched


def test_a_named_filter_is_validated_and_applied(merchant):
    _payments(merchant)
    valid = _filterset("status=captured", merchant)
    assert valid.is_valid()
    assert list(valid.qs.values_list("status", flat=True)) == ["captured"]
    assert not _filterset("status=bogus", merchant).is_valid()
    assert not _filterset("is_test=yes", merchant).is_valid()
    empty = _filterset("status=", merchant)  # named with no value: the form runs, nothing filtered
    assert empty.is_valid()
    assert empty.qs.count() == 2


def test_the_list_endpoint_still_refuses_a_bad_filter(api_client):
    response = api_client.get("/api/v1/payments?min_amount=abc")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
