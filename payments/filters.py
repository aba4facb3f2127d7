"""``GET /payments`` filters (CONTRACT section 4). An invalid value is ``400 validation_error``."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.filters import AmountFilter, InstantFilter
from payments.models import Payment, PaymentStatus


@extend_schema_field(OpenApiTypes.BOOL)  # a boolean; not an enum of the strings "true"/"false"
class StrictBooleanFilter(django_filters.BooleanFilter):
    """``true``/``false`` (any case) only: anything else is an error, never silently ignored."""

    field_class = forms.TypedChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        return super().filter(qs, value)


class PaymentFilter(django_filters.FilterSet):
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

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            data = data.copy()
            if "is_test" in data and isinstance(data.get("is_test"), str):
                data["is_test"] = data["is_test"].lower()
        super().__init__(data, *args, **kwargs)
