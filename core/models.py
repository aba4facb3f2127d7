"""Abstract bases shared by every app's models."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Heartbeat(models.Model):
    """The last time a long-running process (the beat scheduler) said it was alive.

    A database row, not a cache entry: under ``make run`` the cache is per process, and every web
    instance must see the scheduler's beat to report it in ``/health/detailed``.
    """

    name = models.CharField(primary_key=True, max_length=64)
    beat_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "core_heartbeat"

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at.isoformat()}"
