"""Reads for subscriptions, always scoped to the calling merchant."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from core.errors import NotFound

from .models import Subscription


def subscription_list(*, merchant_id) -> QuerySet[Subscription]:
    return Subscription.objects.filter(merchant_id=merchant_id)


def subscription_get(*, merchant_id, subscription_id) -> Subscription:
    """Another merchant's id and a malformed id are both 404: nothing tells them apart."""
    try:
        pk = uuid.UUID(str(subscription_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound("No such subscription.") from None
    try:
        return Subscription.objects.get(pk=pk, merchant_id=merchant_id)
    except Subscription.DoesNotExist:
        raise NotFound("No such subscription.") from None
