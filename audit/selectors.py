"""Reads of the audit app."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from .models import AuditLog


def audit_log_list(*, merchant_id) -> QuerySet[AuditLog]:
    """A merchant's own audit rows, newest first."""
    return AuditLog.objects.filter(merchant_id=merchant_id).order_by("-created_at", "-id")


def audit_log_get(*, merchant_id, log_id: str) -> AuditLog | None:
    """One of the merchant's rows; ``None`` for another merchant's id or a malformed one."""
    try:
        pk = uuid.UUID(str(log_id))
    except ValueError:
        return None
    return AuditLog.objects.filter(merchant_id=merchant_id, pk=pk).first()
