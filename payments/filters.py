"""``GET /payments`` filters (CONTRACT section 4). An invalid value is ``400 validation_error``."""

from __future__ import annotations

import django_filters

from core.filters import AmountFilter, InstantFilter, ListFilterSet, StrictBooleanFilter
from payments.models import Payment, PaymentStatus


class PaymentFilter(ListFilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices)
    customer_id = django_filters.CharFilter()
    currency = django_filters.CharFilter()
    is_test = StrictBooleanFilter(field_name="is_test")
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")
    min_amount = AmountFilter(field_name="amount", lookup_expr="gte")
    max_amount = AmountFilter(field_name="amount", lookup_expr="lte")
    subscription_id = django_filters.UUIDFilter(field_name="subscription_id")

    class Meta:
        model = Payment
        fields = [
            "status",
            "customer_id",
            "currency",
            "is_test",
            "created_after",
            "created_before",
            "min_amount",
            "max_amount",
            "subscription_id",
        ]
