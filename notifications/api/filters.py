"""List filters of GET /api/v1/notifications (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from core.filters import InstantFilter

from ..models import Kind, Notification


class NotificationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    status = django_filters.ChoiceFilter(choices=Notification.Status.choices)
    channel = django_filters.ChoiceFilter(choices=Notification.Channel.choices)
    object_id = django_filters.CharFilter(
        method="filter_object_id",
        help_text="The object the notification is about, or the payment or subscription it belongs to "
        "(a payment's id also finds its refund receipts; a subscription's, its renewals' receipts).",
    )
    object_type = django_filters.CharFilter(field_name="object_type")
    event_id = django_filters.CharFilter(field_name="event_id")
    recipient = django_filters.CharFilter(field_name="recipient", lookup_expr="iexact")
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lte")

    def filter_object_id(self, queryset, name, value):
        return queryset.filter(Q(object_id=value) | Q(context__payment_id=value) | Q(context__subscription_id=value))

    class Meta:
        model = Notification
        fields = (
            "kind",
            "status",
            "channel",
            "object_id",
            "object_type",
            "event_id",
            "recipient",
            "created_after",
            "created_before",
        )
