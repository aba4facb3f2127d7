"""Changes of a subscription row's state shared by the services and the billing pass.

The caller holds the row lock, saves the row and records the event.
"""

from __future__ import annotations

from django.utils import timezone

from .models import Subscription


def mark_cancelled(subscription: Subscription) -> None:
    subscription.status = Subscription.Status.CANCELLED
    subscription.cancelled_at = timezone.now()
    subscription.next_billing_date = None
