"""Celery tasks of the accounts app."""

from __future__ import annotations

from celery import shared_task

from .services import auth_cleanup as auth_cleanup_service


@shared_task(name="accounts.tasks.auth_cleanup")
def auth_cleanup() -> dict[str, int]:
    """Nightly (CELERY_BEAT_SCHEDULE "accounts.cleanup"): the same work as POST /api/v1/auth/cleanup."""
    return auth_cleanup_service()
