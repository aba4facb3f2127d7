"""Beat tasks of the audit app."""

from __future__ import annotations

from celery import shared_task

from .services import audit_log_purge


@shared_task(name="audit.tasks.audit_purge")
def audit_purge() -> int:
    """Delete audit rows older than ``AUDIT_RETENTION_DAYS`` (the only path that deletes them)."""
    return audit_log_purge()
