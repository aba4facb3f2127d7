"""Abstract bases shared by every app's models, and the few tables core owns (heartbeats, idempotency records)."""

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


class IdempotencyRecord(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of method + path + canonical JSON body
    request_method = models.CharField(max_length=10, default="POST")
    request_path = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The JSON text exactly as first answered (key order kept, so a replay is byte-identical).
    response_body = models.TextField(blank=True, default="")
    resource_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        # The table keeps the name it had while the model lived in payments (moved in state only).
        db_table = "payments_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_key_per_merchant"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
