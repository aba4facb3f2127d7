"""Per-merchant notification settings and the notifications themselves (the outbox and the log)."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


def new_notification_id() -> str:
    return "ntf_" + secrets.token_hex(12)


class Kind(models.TextChoices):
    PAYMENT_RECEIPT = "payment_receipt", "Payment receipt"
    REFUND_RECEIPT = "refund_receipt", "Refund receipt"
    PAYMENT_FAILED = "payment_failed", "Subscription payment failed"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled", "Subscription cancelled"
    RENEWAL_REMINDER = "renewal_reminder", "Renewal reminder"
    CARD_EXPIRING = "card_expiring", "Card expiring"
    WEBHOOK_ENDPOINT_FAILING = "webhook_endpoint_failing", "Webhook endpoint failing (to the merchant)"


# The on/off switch of each kind and its default (renewal reminders are opt-in).
KIND_DEFAULTS: dict[str, bool] = {
    Kind.PAYMENT_RECEIPT: True,
    Kind.REFUND_RECEIPT: True,
    Kind.PAYMENT_FAILED: True,
    Kind.SUBSCRIPTION_CANCELLED: True,
    Kind.RENEWAL_REMINDER: False,
    Kind.CARD_EXPIRING: True,
    Kind.WEBHOOK_ENDPOINT_FAILING: True,
}


class NotificationSettings(TimeStampedModel):
    """What a merchant sends and how it signs it. No row means every default."""

    merchant = models.OneToOneField("accounts.Merchant", on_delete=models.CASCADE, related_name="notification_settings")
    payment_receipt = models.BooleanField(default=True)
    refund_receipt = models.BooleanField(default=True)
    payment_failed = models.BooleanField(default=True)
    subscription_cancelled = models.BooleanField(default=True)
    renewal_reminder = models.BooleanField(default=False)
    card_expiring = models.BooleanField(default=True)
    webhook_endpoint_failing = models.BooleanField(default=True)
    renewal_reminder_days = models.PositiveSmallIntegerField(default=3)
    sms_enabled = models.BooleanField(default=False)
    # The From display name (the address is DEFAULT_FROM_EMAIL); blank: the merchant's name.
    sender_name = models.CharField(max_length=100, blank=True, default="")
    reply_to = models.EmailField(max_length=254, blank=True, default="")
    support_email = models.EmailField(max_length=254, blank=True, default="")
    # Where the merchant's alerts go; blank: the merchant's own email.
    alert_email = models.EmailField(max_length=254, blank=True, default="")
    # IANA name; dates are shown in UTC and, when set, also in this zone.
    timezone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "notification settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(renewal_reminder_days__gte=1) & Q(renewal_reminder_days__lte=30),
                name="notification_settings_reminder_days_range",
            )
        ]

    def __str__(self) -> str:
        return f"notification settings of {self.merchant_id}"

    def kind_enabled(self, kind: str) -> bool:
        return bool(getattr(self, kind))


class Notification(models.Model):
    """One message to one recipient over one channel, with its delivery state.

    Written in the transaction that records the event causing it; ``dedupe_key`` names that event (or
    the object, for receipts), so the unique constraint makes a second write for the same event and
    recipient impossible, however often the code that writes it runs.
    """

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"

    class Status(models.TextChoices):
        PENDING = "pending"  # queued, or waiting for a retry
        SENT = "sent"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_notification_id, editable=False)
    merchant = models.ForeignKey(  # indexed by notif_merchant_recent_idx
        "accounts.Merchant", on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    recipient = models.CharField(max_length=254)
    # The customer the message went to (for the GDPR export and erasure); blank for merchant alerts.
    customer_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    object_type = models.CharField(max_length=32)  # payment, refund, subscription, webhook_endpoint
    object_id = models.CharField(max_length=64)
    event_id = models.CharField(max_length=32, blank=True, default="")
    dedupe_key = models.CharField(max_length=128)
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends", editable=False
    )
    # What the template needs, frozen when the notification is written (never card data).
    context = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=255, blank=True, default="")
    body_text = models.TextField(blank=True, default="")
    body_html = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "kind", "channel", "dedupe_key", "recipient"],
                name="notification_once_per_event_recipient",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="notif_merchant_recent_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="notification_due_idx"),
            models.Index(fields=["merchant", "object_id"], name="notification_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} -> {self.recipient} ({self.status})"


class NotificationAttempt(models.Model):
    """One try at handing a notification to the SMTP server or the SMS provider."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveIntegerField()
    succeeded = models.BooleanField(default=False)
    permanent = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("attempt_number",)
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "attempt_number"], name="notification_attempt_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.attempt_number} {'ok' if self.succeeded else self.error}"
