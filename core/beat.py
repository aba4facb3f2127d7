"""Loads the beat schedule declared in settings (code, reviewed like code) into django-celery-beat,
so staff see every entry in the admin right after ``migrate`` and can pause it there."""

from __future__ import annotations

from django.conf import settings


def sync_beat_schedule(**kwargs) -> int:
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        ModelEntry.from_entry(name, app=app, **entry)
    return len(settings.CELERY_BEAT_SCHEDULE)
