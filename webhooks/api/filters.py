"""List filters of the webhooks API (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import InstantFilter

from ..models import Event, EventDelivery

DELIVERY_STATUSES = (("pending", "pending"), ("succeeded", "succeeded"), ("failed", "failed"))


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="type")
    delivery_status = django_filters.ChoiceFilter(choices=DELIVERY_STATUSES, method="filter_delivery_status")
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Event
        fields = ("type", "delivery_status", "created_after", "created_before")

    def filter_delivery_status(self, queryset, name, value):
        # Mirrors EventSerializer.get_delivery_status (see selectors.event_list).
        if value == "failed":
            return queryset.filter(has_failed=True)
        if value == "pending":
            return queryset.filter(has_failed=False, has_pending=True)
        return queryset.filter(has_failed=False, has_pending=False, has_succeeded=True)


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=EventDelivery.Status.choices)
    event_id = django_filters.CharFilter(field_name="event_id")

    class Meta:
        model = EventDelivery
        fields = ("status", "event_id")
