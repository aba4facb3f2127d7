"""Reads for notifications."""

from __future__ import annotations

from .models import Notification


def notification_list(*, merchant_id):
    return Notification.objects.filter(merchant_id=merchant_id).order_by("-created_at", "-id")
