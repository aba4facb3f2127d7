"""List filters of GET /api/v1/subscriptions."""

from __future__ import annotations

import django_filters

from core.filters import InstantFilter, StrictBooleanFilter

from ..models import Subscription


class SubscriptionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Subscription.Status.choices)
    customer_id = django_filters.CharFilter()
    plan_id = django_filters.CharFilter()
    billing_cycle = django_filters.ChoiceFilter(choices=Subscription.Cycle.choices)
    currency = django_filters.CharFilter()
    is_test = StrictBooleanFilter()
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Subscription
        fields = ("status", "customer_id", "plan_id", "billing_cycle", "currency", "is_test")
