"""Subscriptions: a customer's recurring charge, billed by the daily pass in ``subscriptions.tasks``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


class Subscription(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        PAST_DUE = "past_due"
        CANCELLED = "cancelled"

    class Cycle(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        QUARTERLY = "quarterly"
        YEARLY = "yearly"

    merchant = models.ForeignKey(  # indexed by subscr_merchant_recent_idx (and the external_id constraint)
        "accounts.Merchant", on_delete=models.PROTECT, related_name="subscriptions", db_index=False
    )
    external_id = models.CharField(max_length=255)
    customer_id = models.CharField(max_length=255, db_index=True)
    customer_email = models.EmailField(blank=True, default="")
    customer_name = models.CharField(max_length=255, blank=True, default="")
    customer_phone = models.CharField(max_length=16, blank=True, default="", help_text="E.164")
    plan_id = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    billing_cycle = models.CharField(max_length=20, choices=Cycle.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The day billing is anchored to (Jan 31 monthly bills Feb 28/29, then Mar 31).
    start_date = models.DateField()
    next_billing_date = models.DateField(null=True, blank=True)
    current_period_start = models.DateField(null=True, blank=True)
    current_period_end = models.DateField(null=True, blank=True)
    # How to charge again, never a card number: a test token, or an Authorize.Net customer profile.
    payment_method = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict, blank=True)
    is_test = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "external_id"], name="subscription_external_id_per_merchant"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="subscription_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "next_billing_date"], name="subscription_due_idx"),
            models.Index(fields=["merchant", "-created_at", "-id"], name="subscr_merchant_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.status})"


class BillingAttempt(TimeStampedModel):
    """One try at charging one billing period of a subscription.

    The billing pass claims a period by inserting a ``pending`` row *before* it calls the processor,
    then records the outcome on it. Two constraints make double charging impossible whatever runs
    concurrently: attempt numbers are unique per period, and at most one attempt per period can be
    ``pending`` (in flight) or ``succeeded``. A declined attempt is ``failed`` and frees the period
    for the next retry, which gets the next ``attempt_number``.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="billing_attempts")
    period_start = models.DateField()
    period_end = models.DateField()
    attempt_number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="billing_attempts"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The payment's external_id, derived from (subscription, period, attempt): a re-run of the same
    # attempt after a crash finds the payment it may already have created instead of charging again.
    payment_external_id = models.CharField(max_length=255)
    # Why it failed: "declined", "hard_decline", "processor_error", "processor_unavailable" ...
    failure_reason = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=255, blank=True, default="")
    processor_reason_code = models.CharField(max_length=16, blank=True, default="")
    # Lease of the worker that owns a pending attempt; a lease older than
    # SUBSCRIPTION_STALE_ATTEMPT_MINUTES is re-checked by a later pass (crash recovery).
    claimed_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start", "attempt_number"], name="billing_attempt_number_per_period"
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(status__in=["pending", "succeeded"]),
                name="billing_attempt_one_live_per_period",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_attempt_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "claimed_at"], name="billing_attempt_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period_start} #{self.attempt_number} ({self.status})"
