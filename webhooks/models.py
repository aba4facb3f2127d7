"""Events (the outbox of state changes sent to merchants), their deliveries, endpoints, and inbound
processor notifications."""

from __future__ import annotations

import secrets

from django.db import models

from core.models import TimeStampedModel


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class Event(models.Model):
    """A merchant-visible event, written in the same transaction as the state change that causes it.

    Delivery to the merchant's endpoints happens after commit; the event id stays the same
    across every retry.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_event_id, editable=False)
    merchant = models.ForeignKey(  # indexed by event_merchant_recent_idx
        "accounts.Merchant", on_delete=models.CASCADE, related_name="events", db_index=False
    )
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The object the event is about ("payment:<id>", "subscription:<id>") and its place among that
    # object's events: 1, 2, 3 ... in the order the state changes committed (see EventSequence).
    object_key = models.CharField(max_length=100, blank=True, default="")
    sequence = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="event_merchant_recent_idx"),
            models.Index(fields=["type"], name="event_type_idx"),  # no LIKE twin (db_index would add one)
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"

    def as_payload(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "created": self.created_at.isoformat().replace("+00:00", "Z"),
            "sequence": self.sequence,
            "data": self.data,
        }


class EventSequence(models.Model):
    """The last event sequence number given to one object. Taken with an upsert inside the state
    change's transaction: the row stays locked until that transaction ends, so two changes of one
    object get their numbers in the order they commit (webhooks.services.event_sequence_next)."""

    object_key = models.CharField(primary_key=True, max_length=100)
    last = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.object_key} #{self.last}"


class InboundEvent(TimeStampedModel):
    """A notification received from a processor (the design's ``webhooks`` table).

    Stored before anything else happens: raw body, headers (secrets removed) and source IP, so every
    delivery can be inspected and replayed. Only signature-valid rows are ever processed; the
    notification id is unique among them (a database constraint, so duplicates arriving at the same
    moment are processed once). Rows that failed verification are kept, truncated and capped, for
    forensics; they never take part in the uniqueness check, so a forged body cannot squat a real
    notification id.
    """

    class Source(models.TextChoices):
        AUTHORIZE_NET = "authorize_net", "Authorize.Net"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"

    event_id = models.CharField(max_length=255, help_text="The processor's notification id (notificationId).")
    event_type = models.CharField(max_length=100, blank=True, db_index=True)
    source = models.CharField(max_length=50, choices=Source.choices, default=Source.AUTHORIZE_NET)
    payload = models.JSONField(default=dict, blank=True)
    raw_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    signature = models.CharField(max_length=255, blank=True)
    signature_valid = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    retry_count = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The merchant whose payment the notification turned out to concern (set when processed).
    merchant = models.ForeignKey(
        "accounts.Merchant", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_events"
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"],
                condition=models.Q(signature_valid=True),
                name="inbound_event_unique_notification",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="inbound_event_due_idx"),
            models.Index(fields=["signature_valid", "created_at"], name="inbound_valid_created_idx"),
            models.Index(fields=["event_id"], name="inbound_event_event_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_id} {self.event_type} ({self.status})"


def new_endpoint_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class WebhookEndpointQuerySet(models.QuerySet):
    def live(self):
        """Not deleted (deleted endpoints keep their delivery history but disappear from the API)."""
        return self.filter(deleted_at__isnull=True)

    def active(self):
        return self.live().filter(is_active=True)


class WebhookEndpoint(TimeStampedModel):
    """A merchant's URL that receives signed events.

    ``secret`` is the HMAC key deliveries are signed with, so it is kept (not hashed); it is shown
    only in the responses to creation and rotation. After a rotation the previous secret keeps
    signing too (a second ``v1``) until ``previous_secret_expires_at``.
    """

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    secret = models.CharField(max_length=64, default=new_endpoint_secret, editable=False)
    previous_secret = models.CharField(max_length=64, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["merchant", "is_active"], name="webhook_endpoint_merchant_idx")]

    def __str__(self) -> str:
        return f"{self.url} ({self.merchant_id})"

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class EventDelivery(TimeStampedModel):
    """One event on its way to one endpoint: retried on a schedule until it succeeds or fails for good."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts made before the current retry schedule began (a manual redelivery starts a new one).
    schedule_offset = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "event deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="event_delivery_unique_event_endpoint"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="event_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class DeliveryAttempt(TimeStampedModel):
    """One HTTP POST of a delivery: what came back and how long it took."""

    delivery = models.ForeignKey(EventDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveIntegerField()
    url = models.CharField(max_length=2048, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ("attempt_number",)
        constraints = [
            models.UniqueConstraint(fields=["delivery", "attempt_number"], name="delivery_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.attempt_number} {self.status_code or self.error}"
